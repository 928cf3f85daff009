// SPDX-License-Identifier: MIT
/*
 * The policy routing of `fedgate capture`: ip rules and local routes over
 * rtnetlink. With libmnl rather than raw netlink: libnftables links it
 * already, and it does the attribute alignment and the ACK parsing
 * (mnl_cb_run turns an NLMSG_ERROR into errno) that raw netlink would make
 * us write again.
 */
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>

#include "control/capture.h"
#include "control/rtnl.h"
#include "fedgate/err.h"

/* rtm_table / frh->table hold 8 bits; a larger table goes in the attribute only. */
static uint8_t table8(uint32_t table)
{
	return table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
}

/* "fwmark M [iif lo] lookup T priority P": every field `add` sets, so `del` removes just it. */
static void put_rule(struct nlmsghdr *nlh, const struct fg_rt_entry *e)
{
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

	frh->family = (uint8_t)e->family;
	frh->table = table8(e->table);
	frh->action = FR_ACT_TO_TBL;
	mnl_attr_put_u32(nlh, FRA_TABLE, e->table);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, e->priority);
	mnl_attr_put_u32(nlh, FRA_FWMARK, e->fwmark); /* no FRA_FWMASK: all bits, as `ip rule` */
	if (e->iif_lo)
		mnl_attr_put_strz(nlh, FRA_IIFNAME, "lo");
}

/*
 * "local default dev lo table T". A delete names any protocol and scope (as
 * `ip route del` does) but only a route of type local, never another default.
 */
static void put_route(struct nlmsghdr *nlh, const struct fg_rt_entry *e, int add, unsigned lo)
{
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)e->family;
	rtm->rtm_table = table8(e->table);
	rtm->rtm_protocol = add ? RTPROT_BOOT : RTPROT_UNSPEC;
	rtm->rtm_scope = add ? RT_SCOPE_HOST : RT_SCOPE_NOWHERE;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, e->table);
	mnl_attr_put_u32(nlh, RTA_OIF, lo);
}

/* Sends @nlh and waits for its ACK; returns 0 or the kernel's negative errno. */
static int talk(struct mnl_socket *nl, struct nlmsghdr *nlh, char *buf, size_t size)
{
	unsigned portid = mnl_socket_get_portid(nl), seq = nlh->nlmsg_seq;
	ssize_t n;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, size);
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0)
		return -errno;
	return 0;
}

/*
 * Adds (@add, NLM_F_EXCL: EEXIST means it is there already) or deletes
 * (ENOENT, ESRCH: it was not there; EAFNOSUPPORT: no IPv6, so nothing to
 * delete) @e. Returns 0 or a negative errno with @err naming the command.
 */
static int apply_one(struct mnl_socket *nl, const struct fg_rt_entry *e, int add, unsigned lo,
		     unsigned seq, struct fg_err *err)
{
	/* MNL_SOCKET_BUFFER_SIZE without the VLA; zeroed: libmnl 1.0.4 leaves attribute padding */
	char buf[8192] = { 0 }, what[128];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	int ret;

	if (e->kind == FG_RT_RULE)
		nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
	else
		nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	nlh->nlmsg_seq = seq;
	if (e->kind == FG_RT_RULE)
		put_rule(nlh, e);
	else
		put_route(nlh, e, add, lo);
	ret = talk(nl, nlh, buf, sizeof(buf));
	if (add && ret == -EEXIST)
		ret = 0;
	if (!add && (ret == -ENOENT || ret == -ESRCH || ret == -EAFNOSUPPORT))
		ret = 0;
	if (ret) {
		fg_rt_entry_text(e, add, what, sizeof(what));
		fg_err_set(err, ret, "rtnetlink: %s: %s%s", what, strerror(-ret),
			   ret == -ENETDOWN ? " (lo is down: ip link set lo up)" : "");
	}
	return ret;
}

int fg_rtnl_apply(const struct fg_rt_entry *rt, size_t n, struct fg_err *err)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned lo = if_nametoindex("lo"), seq = (unsigned)time(NULL);
	int ret = 0;

	if (!nl)
		return fg_err_set(err, -errno, "rtnetlink: socket: %s", strerror(errno));
	if (!lo) {
		ret = fg_err_set(err, -ENODEV, "rtnetlink: no loopback interface here");
		goto close_nl;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = fg_err_set(err, -errno, "rtnetlink: bind: %s", strerror(errno));
		goto close_nl;
	}
	/* Deletes last-added first, then adds in order: a rule never points at an empty table. */
	for (size_t i = n; i-- > 0 && !ret;)
		if (!rt[i].present)
			ret = apply_one(nl, &rt[i], 0, lo, seq++, err);
	for (size_t i = 0; i < n && !ret; i++)
		if (rt[i].present)
			ret = apply_one(nl, &rt[i], 1, lo, seq++, err);
close_nl:
	mnl_socket_close(nl);
	return ret;
}
