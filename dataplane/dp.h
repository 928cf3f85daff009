/* SPDX-License-Identifier: MIT */
/* Internal to the data plane: one worker thread, its io_uring and its tunnels. */
#ifndef FEDGATE_DATAPLANE_DP_H
#define FEDGATE_DATAPLANE_DP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <liburing.h>

#include "fedgate/handoff-t.h"
#include "fedgate/legs-t.h"
#include "fedgate/record-t.h"

/* Operation types, kept in the low bits of user_data (owners are 16-byte aligned). */
enum dp_op {
	DP_OP_HANDOFF = 1, /* recvmsg on the worker's handoff socket */
	DP_OP_PLAIN_RECV,  /* plaintext in, to be sealed */
	DP_OP_TLS_SEND,	   /* sealed records out */
	DP_OP_TLS_RECV,	   /* records in, to be opened */
	DP_OP_PLAIN_SEND,  /* opened plaintext out */
	DP_OP_POLL,	   /* readiness ahead of a linked splice, or a cancel: result not needed; */
			   /* or a lingering tunnel's deadline (linger.c): -ETIME when it fires */
	DP_OP_UP_READY,	   /* an idle plaintext side became readable */
	DP_OP_DOWN_READY,  /* an idle TLS side became readable */
	DP_OP_DRAIN,	   /* a drain's deadline, then its grace, passed (drain.c) */
	DP_OP_TICK,	   /* the worker's once-a-second timeout (idle.c) */
	DP_OP_REPORT,	   /* the handoff socket has room again for what waits (worker.c) */
};
#define DP_OP_MASK 15u

/*
 * Records handled per direction per read: bigger batches mean fewer syscalls
 * per byte, smaller ones less memory per tunnel (see README).
 */
#define DP_BATCH 2
#define DP_UP_IN (FG_TLS_MAX_PLAIN * DP_BATCH)
/* Room for a KeyUpdate and a close_notify record besides the data records. */
#define DP_UP_OUT (FG_TLS_SEAL_MAX * DP_BATCH + 2 * 64)
#define DP_DOWN_IN (FG_TLS_RECORD_MAX * DP_BATCH)
#define DP_DOWN_OUT (FG_TLS_MAX_PLAIN * DP_BATCH + 1)
/* Bytes moved per splice into kTLS: the default pipe holds 16 pages. */
#define DP_SPLICE_LEN 65536

/*
 * A direction holds its buffers (one chunk: in, then out) only while bytes
 * move: an idle tunnel waits on a poll with none, and its chunk goes back to
 * the worker's pool. That keeps idle tunnels at a few hundred bytes each.
 */
#define DP_UP_CHUNK (DP_UP_IN + DP_UP_OUT)
#define DP_DOWN_CHUNK (DP_DOWN_IN + DP_DOWN_OUT)
#define DP_CHUNK (DP_UP_CHUNK > DP_DOWN_CHUNK ? DP_UP_CHUNK : DP_DOWN_CHUNK)
/* Free chunks a worker keeps for reuse; more are wiped and freed. */
#define DP_POOL_KEEP 64

/*
 * The worker's provided-buffer ring (bufring.c): an idle direction keeps a
 * receive armed that owns no buffer; the kernel picks one of these when bytes
 * come, and they are copied into the direction's chunk at once. One
 * completion per message instead of a poll, then a receive. A batch that
 * finds the ring empty completes with -ENOBUFS and falls back to the poll.
 */
#define DP_RING_BUFS 64 /* a power of two */
#define DP_RING_BUF FG_TLS_MAX_PLAIN
#define DP_RING_BGID 1

struct dp_pool {
	void *free; /* a chunk's first word links to the next free one */
	size_t n_free;
	size_t n_out; /* chunks held by tunnels, for the debug log and tests */
};

/* ---- pool.c ---- */

/* Returns a DP_CHUNK-byte buffer, or NULL when memory is short. */
void *dp_pool_get(struct dp_pool *p);
/* Takes back @chunk (NULL is fine). Chunks kept for reuse are not wiped: they stay here. */
void dp_pool_put(struct dp_pool *p, void *chunk);
/* Wipes and frees every kept chunk. */
void dp_pool_exit(struct dp_pool *p);

struct dp_worker;
struct dp_tunnel;

/*
 * What a backend does at each completion; dp_tunnel_complete() dispatches. Each
 * handler gets the operation's result (bytes or -errno) and queues the next step.
 */
struct dp_backend {
	const char *name;
	void (*start)(struct dp_tunnel *t);
	void (*up_recv)(struct dp_tunnel *t);	/* read plaintext again (after UP_READY) */
	void (*down_recv)(struct dp_tunnel *t); /* read records again (after DOWN_READY) */
	void (*plain_recv)(struct dp_tunnel *t, int res);
	void (*tls_send)(struct dp_tunnel *t, int res);
	void (*tls_recv)(struct dp_tunnel *t, int res);
	void (*plain_send)(struct dp_tunnel *t, int res);
};

/*
 * A control-message buffer for one TLS record-type cmsg, aligned for its
 * header (struct cmsghdr itself ends in a flexible array: no member of a struct).
 */
struct dp_cmsg {
	_Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(uint8_t))];
};

struct __attribute__((aligned(16))) dp_tunnel {
	struct dp_worker *w;
	struct dp_tunnel *prev, *next;
	int plain_fd, tls_fd;
	struct fg_record_dir tx, rx;
	/* NULL while the direction is idle; up_in and down_in own a pool chunk each */
	uint8_t *up_in, *up_out, *down_in, *down_out;
	size_t up_out_len, up_out_off;
	size_t down_in_len;
	size_t down_out_len, down_out_off;
	unsigned int inflight;
	bool up_closing;	 /* close_notify queued; then SHUT_WR on the TLS side */
	bool up_done, down_done; /* each direction half-closed cleanly */
	bool down_eof;		 /* close_notify or FIN seen on the TLS side */
	bool closing;		 /* aborted: waiting for in-flight ops before freeing */
	bool reset_tls;		 /* aborted because the plaintext side broke: reset the TLS peer */
	bool key_update_pending; /* the peer asked for our KeyUpdate */
	bool kernel;		 /* kTLS on tls_fd: the kernel seals and opens records */
	bool stopping;		 /* a drain's deadline passed: both directions end (drain.c) */
	/* The peer broke the protocol: the alert it gets before the close (linger.c). */
	bool alert_due;
	uint8_t alert_desc;
	uint8_t linger;	   /* enum dp_linger_state; 0 while the tunnel does not linger */
	bool linger_timer; /* its deadline is queued and has neither fired nor been removed */
	uint8_t alert_len, alert_off;
	uint8_t alert_rec[FG_TLS_HDR + 3 + FG_TLS_TAG]; /* sealed; with kTLS its 2 bytes */
	struct __kernel_timespec linger_ts;
	const struct dp_backend *backend;
	bool splice; /* kernel mode: plaintext reaches kTLS through @pipe */
	int pipe[2]; /* splice mode: [0] read end, [1] write end; else -1 */
	/* kernel mode: recvmsg for the record type, sendmsg for close_notify */
	struct msghdr down_msg, up_msg;
	struct iovec down_iov, up_iov;
	struct dp_cmsg down_cmsg, up_cmsg;
	uint64_t bytes_up, bytes_down;
	uint64_t told_up, told_down; /* of those, told the control process (closed.c) */
	struct fg_legs_slot *legs;   /* the plain side's local redirect slot, or NULL */
	/*
	 * The last read of each direction got less than it asked for: the socket
	 * was drained, so the next read is armed (bufring.c) instead of tried at
	 * once, which would fail with EAGAIN. @up_want, @down_want: what it asked.
	 */
	bool up_drained, down_drained;
	uint32_t up_want, down_want;
	/* An armed read of that direction is in flight (dp_queue_armed), its bytes in the ring. */
	bool up_armed, down_armed;
	uint32_t idle_s;	     /* closed after this many seconds without a byte; 0: never */
	uint64_t active_tick;	     /* the worker's tick of the last completion that moved bytes */
	char name[64], peer[256];
	uint32_t id; /* its handoff's: named in the close report (closed.c) */
};

struct __attribute__((aligned(16))) dp_worker {
	struct io_uring ring;
	struct dp_pool pool;
	/* bufring.c: the provided-buffer ring and its buffers; @br NULL: none, polls instead */
	struct io_uring_buf_ring *br;
	uint8_t *br_bufs;
	int index;
	int handoff_fd;
	bool kernel;	      /* install kTLS on every tunnel (offload kernel or auto with kTLS) */
	bool kernel_required; /* offload kernel: no userspace fallback */
	bool splice_tx;	      /* kTLS TX by splice through a pipe, not send from a buffer */
	bool handoff_open;
	struct fg_legs_slot *legs; /* the local redirect's slot array, or NULL when off */
	struct fg_handoff *h;	   /* receive buffer for handoffs */
	struct msghdr msg;
	struct iovec iov;
	struct {
		_Alignas(struct cmsghdr) char buf[64];
	} cmsg; /* the handoff's SCM_RIGHTS: two fds, and room to see any more */
	struct dp_tunnel *tunnels;
	size_t n_tunnels;
	size_t n_reported; /* n_tunnels as last told to the control process */
	/*
	 * Answers the handoff socket had no room for, in order, sent before any
	 * close report once it has (@report_poll: a POLLOUT is queued for it).
	 * The control process has at most 64 handoffs unanswered per worker.
	 */
	struct {
		uint32_t id;
		int32_t err;
	} acks[128];
	size_t n_acks;
	bool report_poll;
	struct fg_handoff_tally *closed; /* closed.c: freed tunnels not yet reported */
	size_t n_closed, cap_closed;
	int drain_phase; /* 0: none; 1: until the deadline; 2: the grace after it */
	struct __kernel_timespec drain_ts;
	/* idle.c: seconds counted by a timeout, armed while a tunnel has an idle limit */
	uint64_t ticks;
	bool tick_armed;
	struct __kernel_timespec tick_ts;
};

static inline void dp_set_data(struct io_uring_sqe *sqe, void *owner, enum dp_op op)
{
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)owner | op);
}

/*
 * ---- tunnel_ops.c and tunnel_io.c: the steps both backends share ----
 * They call no backend and no worker code: the calls between the data plane's
 * files go one way (worker -> tunnel -> backends -> tunnel_ops -> linger ->
 * tunnel_io -> pool, alert; worker and tunnel -> idle -> tunnel_ops). Below:
 * tunnel_io.c's (SQEs, queued sends and receives, chunks), then tunnel_ops.c's.
 */

/* Returns an SQE, submitting what is queued to make room. Never NULL once the ring works. */
struct io_uring_sqe *dp_get_sqe(struct dp_worker *w);

/* @msg zeroed, then one iovec (@iov: @buf, @len) and the control buffer @control. */
void dp_prep_msg(struct msghdr *msg, struct iovec *iov, void *buf, size_t len, void *control,
		 size_t control_len);

/* Closes @t: in-flight operations complete, then it is freed. Logs @why once. */
void dp_tunnel_abort(struct dp_tunnel *t, const char *why);
void dp_tunnel_abort_errno(struct dp_tunnel *t, const char *what, int err);
/* The plaintext side failed (@err): as dp_tunnel_abort_errno, and the TLS peer gets a reset too. */
void dp_tunnel_abort_plain(struct dp_tunnel *t, const char *what, int err);
/*
 * A record the peer sent was refused (@err: the record layer's or kTLS's -errno;
 * @hdr: the record's FG_TLS_HDR bytes, or NULL with kTLS). The peer gets the
 * alert dp_record_alert() names, if any.
 */
void dp_tunnel_abort_record(struct dp_tunnel *t, int err, const uint8_t *hdr);

/* Frees @t once nothing is in flight and it is aborted or both directions are done. */
void dp_tunnel_maybe_finish(struct dp_tunnel *t);

/* @flags MSG_DONTWAIT: the read completes with -EAGAIN instead of waiting (see dp_idle()). */
void dp_queue_recv(struct dp_tunnel *t, enum dp_op op, int fd, void *buf, size_t len, int flags);

/*
 * An armed read of @op (PLAIN_RECV or TLS_RECV) on @fd that holds no buffer:
 * the kernel picks one of the worker's ring when bytes come (bufring.c).
 * The direction's chunk must be released already.
 */
void dp_queue_armed(struct dp_tunnel *t, enum dp_op op, int fd);
void dp_queue_send(struct dp_tunnel *t, enum dp_op op, int fd, const void *buf, size_t len);

/* Give a direction its chunk: 0, or -ENOMEM. Release: back to the pool, if held. */
int dp_up_hold(struct dp_tunnel *t);
int dp_down_hold(struct dp_tunnel *t);
void dp_up_release(struct dp_tunnel *t);
void dp_down_release(struct dp_tunnel *t);

/*
 * For a read that got -EAGAIN (or -ENOBUFS from an armed one) with nothing
 * pending in that direction: returns its chunk to the pool and waits, with
 * an armed read (dp_queue_armed) where the worker has a buffer ring and the
 * backend reads that direction with recv, else on a poll, which completes as
 * @op (UP_READY or DOWN_READY). Returns true when it did.
 */
bool dp_idle(struct dp_tunnel *t, enum dp_op op, int res);

/*
 * Whether the direction's next read should wait armed, holding no chunk: the
 * worker has a buffer ring and the last read drained the socket. Then its
 * chunk is released and the armed read queued (it completes as @op).
 */
bool dp_rest(struct dp_tunnel *t, enum dp_op op);

/* Reads plaintext into up_in without waiting: with nothing there, the tunnel idles. */
void dp_up_recv(struct dp_tunnel *t);

/* Our close_notify is out: SHUT_WR toward the TLS peer, the chunk released. */
void dp_up_finish(struct dp_tunnel *t);

/* Sends what remains of down_out to the plaintext side. */
void dp_down_send(struct dp_tunnel *t);

/*
 * A plaintext send completed with @res: aborts on an error, sends the rest,
 * or, all of down_out sent, empties it and returns true (the caller reads on).
 */
bool dp_down_sent(struct dp_tunnel *t, int res);

/* The TLS side ended without close_notify (a FIN): logged, then dp_down_finish(). */
void dp_down_closed(struct dp_tunnel *t);

/* The TLS peer is done sending: SHUT_WR toward the plaintext side. */
void dp_down_finish(struct dp_tunnel *t);

/*
 * ---- closed.c: close reports (fedgate/handoff-t.h struct fg_handoff_closed) ----
 * The control process counts tunnels per name ($.tunnels[].max_tunnels), so
 * each freed tunnel's handoff id goes back to it, in batches, with the bytes
 * it moved since its last tally.
 */

/*
 * @t is being freed: its id and untold bytes are kept for dp_closed_flush().
 * Without memory they are dropped (logged).
 */
void dp_closed_note(struct dp_worker *w, struct dp_tunnel *t);

/*
 * Tells the bytes each running tunnel moved since its last tally, in
 * batches, without waiting; a full socket leaves the rest untold for the
 * next call or the close report. Called once a second, from the worker's
 * tick (worker.c), and only while no answer or close report waits: those go first.
 */
void dp_bytes_report(struct dp_worker *w);

/*
 * Sends what was noted, FG_HANDOFF_CLOSED_MAX tunnels a message, without waiting;
 * a full socket keeps the rest for the next call. Frees the buffer at @final.
 */
void dp_closed_flush(struct dp_worker *w, bool final);

/* ---- alert.c: alerts and refused records, named for the log ---- */

/* A received alert: 1 to go on, 0 for close_notify, -errno to abort (logged). */
int dp_down_alert(struct dp_tunnel *t, const uint8_t *p, size_t len);

/*
 * The peer broke the protocol: @t gets @desc as its fatal alert when it is
 * aborted next. Returns -EPROTO, for the caller to return.
 */
int dp_peer_error(struct dp_tunnel *t, uint8_t desc);

/*
 * The alert for a record refused with @err (RFC 8446 5.2, 5.4, 6.2), @hdr as
 * for dp_tunnel_abort_record(); -1 for an error of the socket, not the record.
 */
int dp_record_alert(int err, const uint8_t *hdr);

/* "bad_record_mac" etc.; "unknown alert" for what fedgate does not name. */
const char *dp_alert_name(uint8_t desc);

/* "record authentication failed (bad_record_mac)" etc. for a record-layer errno. */
const char *dp_record_error(int err);

/* Why a tunnel closes for a backend's -errno on a received record: "peer alert" etc. */
const char *dp_down_error(int err);

/*
 * ---- idle.c: the idle reaper ----
 * A tunnel with an idle limit notes the worker's tick whenever a completion
 * moves bytes (no clock read, no syscall); once a second the worker's tick
 * closes those that moved none for longer than their limit.
 */

/* A tunnel started: the tick runs (it stops itself once none is left). */
void dp_idle_arm(struct dp_worker *w);

/* The tick's completion (@res -ETIME): reaps idle tunnels, re-arms; another @res stops it. */
void dp_idle_tick(struct dp_worker *w, int res);

/* ---- bufring.c: the worker's provided-buffer ring ---- */

/* Sets it up; without it (an older kernel) idle directions poll. 0 or -ENOMEM. */
int dp_bufring_init(struct dp_worker *w);
/* Unregisters it, wipes and frees its buffers. */
void dp_bufring_exit(struct dp_worker *w);

/*
 * Before a read of tunnel @t (PLAIN_RECV or TLS_RECV) completes with *@res:
 * an armed one's bytes (a ring buffer, @cqe_flags) go into its direction's
 * chunk, held now, and the buffer back to the ring. *@res becomes -ENOMEM
 * without a chunk. A closing tunnel's bytes are dropped.
 */
void dp_bufring_take(struct dp_worker *w, struct dp_tunnel *t, enum dp_op op, int *res,
		     unsigned int cqe_flags);

/* ---- tunnel.c: a tunnel's start, and each completion to its backend ---- */

/* Takes ownership of the fds; copies what it needs from @h. Returns 0 or -errno. */
int dp_tunnel_start(struct dp_worker *w, const struct fg_handoff *h, int plain_fd, int tls_fd);

/* Dispatches one completion of @op for tunnel @t. */
void dp_tunnel_complete(struct dp_tunnel *t, enum dp_op op, int res);

/* ---- drain.c: a drain requested by the control process (SIGTERM) ---- */

/* Takes no more tunnels; those running get @deadline_ms, then dp_drain_stop(). */
void dp_drain_start(struct dp_worker *w, uint32_t deadline_ms);

/* A DP_OP_DRAIN timeout completed: the deadline (close_notify), or the grace (abort). */
void dp_drain_timeout(struct dp_worker *w);

/*
 * For a stopping tunnel, before its backend sees a completion: true when the
 * completion was handled here (the TLS side's direction ends instead of
 * reading on), false when the backend goes on with *@res (a plaintext read
 * becomes the end of the stream).
 */
bool dp_drain_step(struct dp_tunnel *t, enum dp_op op, int *res);

#define TLS_HS_NEW_SESSION_TICKET 4
#define TLS_HS_KEY_UPDATE 24
#define TLS_ALERT_CLOSE_NOTIFY 0
#define TLS_ALERT_UNEXPECTED_MESSAGE 10
#define TLS_ALERT_BAD_RECORD_MAC 20
#define TLS_ALERT_RECORD_OVERFLOW 22
#define TLS_ALERT_ILLEGAL_PARAMETER 47
#define TLS_ALERT_DECODE_ERROR 50
#define TLS_ALERT_INTERNAL_ERROR 80
#define TLS_ALERT_USER_CANCELED 90

/*
 * ---- linger.c: a tunnel whose peer broke the protocol, between abort and free ----
 * Called from tunnel_ops.c and tunnel.c only, once the tunnel is closing.
 */

/* How long the alert, our FIN and the reading of what the peer still sends may take. */
#define DP_LINGER_MS 500

/*
 * Starts the linger of @t, aborted with alert_due: its deadline queued, the
 * userspace layer's alert sealed. 0, or -errno when it cannot (our close_notify
 * or FIN went out already, or sealing failed): then the TLS side closes as before.
 */
int dp_linger_start(struct dp_tunnel *t);

/* One completion of @op (@res) on a lingering @t: what it means for the linger. */
void dp_linger_complete(struct dp_tunnel *t, enum dp_op op, int res);

/* Queues the linger's next step once its operations allow; true when @t may be freed. */
bool dp_linger_step(struct dp_tunnel *t);

/* The backends, reached only from tunnel.c and only through these tables. */

/* ---- tunnel_user.c: the userspace record layer ---- */
extern const struct dp_backend dp_user_backend;

/* ---- tunnel_kernel.c: kTLS; TX by send from a buffer, or by splice through a pipe ---- */
extern const struct dp_backend dp_kernel_backend;
extern const struct dp_backend dp_kernel_splice_backend;

#endif
