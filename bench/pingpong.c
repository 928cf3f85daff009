// SPDX-License-Identifier: MIT
/*
 * pingpong: round-trip latency through a tunnel to an echo server.
 *
 *   pingpong HOST PORT COUNT [SIZE]
 *
 * Opens one TCP connection (TCP_NODELAY), sends SIZE bytes (default 64), waits
 * for all of them to come back, COUNT times after COUNT/10 (at least 10)
 * warm-up round trips that are not counted. Prints one JSON line:
 *   {"n": COUNT, "size": SIZE, "min_us": .., "p50_us": .., "p90_us": ..,
 *    "p99_us": .., "max_us": .., "mean_us": ..}
 * Exits 1 with a message if the connection fails or the echo differs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted @v. */
static double pct(const double *v, long n, double p)
{
	long i = (long)(p / 100.0 * n + 0.999999) - 1;

	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static int round_trip(int fd, const char *out, char *in, size_t size)
{
	size_t got = 0;

	if (send(fd, out, size, MSG_NOSIGNAL) != (ssize_t)size)
		return -1;
	while (got < size) {
		ssize_t n = recv(fd, in + got, size - got, 0);

		if (n <= 0)
			return -1;
		got += n;
	}
	return memcmp(out, in, size) ? -1 : 0;
}

static int connect_to(const char *host, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 30 };
	int one = 1, fd;

	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "pingpong: bad IPv4 address \"%s\"\n", host);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		fprintf(stderr, "pingpong: connect %s:%d: %s\n", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static char out[MAX_SIZE], in[MAX_SIZE];
	long count, warm, size = 64;
	double *rtt = NULL, sum = 0;
	int fd, ret = 1;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: pingpong HOST PORT COUNT [SIZE]\n");
		return 2;
	}
	count = atol(argv[3]);
	if (argc == 5)
		size = atol(argv[4]);
	if (count < 1 || size < 1 || size > MAX_SIZE) {
		fprintf(stderr, "pingpong: COUNT must be >= 1 and SIZE 1..%d\n", MAX_SIZE);
		return 2;
	}
	warm = count / 10 < 10 ? 10 : count / 10;
	rtt = calloc(count, sizeof(*rtt));
	fd = connect_to(argv[1], atoi(argv[2]));
	if (!rtt || fd < 0)
		goto out;
	for (long i = 0; i < warm + count; i++) {
		double t0;

		out[0] = (char)i; /* a stale echo would not match */
		out[size - 1] = (char)(i >> 8);
		errno = 0;
		t0 = now_us();
		if (round_trip(fd, out, in, size)) {
			fprintf(stderr, "pingpong: round trip %ld failed: %s\n", i,
				errno ? strerror(errno) : "short or different echo");
			goto close_fd;
		}
		if (i >= warm)
			rtt[i - warm] = now_us() - t0;
	}
	for (long i = 0; i < count; i++)
		sum += rtt[i];
	qsort(rtt, count, sizeof(*rtt), cmp_double);
	printf("{\"n\": %ld, \"size\": %ld, \"min_us\": %.2f, \"p50_us\": %.2f, "
	       "\"p90_us\": %.2f, \"p99_us\": %.2f, \"max_us\": %.2f, \"mean_us\": %.2f}\n",
	       count, size, rtt[0], pct(rtt, count, 50), pct(rtt, count, 90),
	       pct(rtt, count, 99), rtt[count - 1], sum / count);
	ret = 0;
close_fd:
	close(fd);
out:
	free(rtt);
	return ret;
}
