/* SPDX-License-Identifier: MIT */
/*
 * fg_keylog_secret() on any line: the secret never passes FG_SECRET_MAX bytes
 * and a line it does not take leaves the output alone.
 */
#include <stdlib.h>
#include "control/keys.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const labels[] = { "CLIENT_TRAFFIC_SECRET_0",
					      "SERVER_TRAFFIC_SECRET_0" };
	uint8_t out[FG_SECRET_MAX];
	char *line = malloc(size + 1);
	size_t len;

	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	for (size_t i = 0; i < 2; i++) {
		len = (size_t)-1;
		if (fg_keylog_secret(line, labels[i], out, &len) == 0) {
			if (len > FG_SECRET_MAX)
				abort();
		} else if (len != (size_t)-1) {
			abort();
		}
	}
	free(line);
	return 0;
}
