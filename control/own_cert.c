// SPDX-License-Identifier: MIT
/* The gateway's own certificate against the clock: see own_cert.h. */
#include <stdio.h>
#include <time.h>

#include "control/ident_issued.h"
#include "control/own_cert.h"

/* notBefore may be this far ahead (clock skew between the CA and this host). */
#define SKEW_S 60

static void utc(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, len, "?");
}

enum fg_own_cert fg_own_cert_state(X509 *leaf, int64_t now, char *why, size_t len)
{
	int64_t nb = fg_ident_cert_time(X509_get0_notBefore(leaf));
	int64_t na = fg_ident_cert_time(X509_get0_notAfter(leaf));
	char when[64];

	if (!na || now >= na) {
		utc(na, when, sizeof(when));
		snprintf(why, len,
			 "has expired (notAfter %s, %lld s ago): peers refuse it until it is "
			 "replaced",
			 na ? when : "unreadable", (long long)(na ? now - na : 0));
		return FG_OWN_CERT_EXPIRED;
	}
	if (nb > now + SKEW_S) {
		utc(nb, when, sizeof(when));
		snprintf(why, len,
			 "is not valid yet (notBefore %s, in %lld s): peers refuse it until then",
			 when, (long long)(nb - now));
		return FG_OWN_CERT_NOT_YET_VALID;
	}
	/* The last third: identity.ca renews at two thirds of the lifetime (ident_ca.c). */
	if (na > nb && now >= nb + (na - nb) * 2 / 3) {
		utc(na, when, sizeof(when));
		snprintf(why, len,
			 "expires in %lld s (notAfter %s): it is in the last third of its "
			 "lifetime, when renewal is due",
			 (long long)(na - now), when);
		return FG_OWN_CERT_RENEW_DUE;
	}
	return FG_OWN_CERT_OK;
}
