/* SPDX-License-Identifier: MIT */
/*
 * https:// URL authorities (control/ca/url.c), as `fedgate ca` client URLs
 * (--ca-url) and token audiences ("aud": https://HOST[:PORT]/1.0/sign) use them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "control/ca/url.h"
#include "unit.h"

#define URL_OK(url, ehost, eport, erest)                                                           \
	do {                                                                                       \
		char _h[256] = "", _p[8] = "";                                                     \
		const char *_r = NULL;                                                             \
		int _ret = fg_url_parse((url), _h, sizeof(_h), _p, sizeof(_p), &_r);               \
		if (_ret || strcmp(_h, (ehost)) || strcmp(_p, (eport)) || !_r ||                  \
		    strcmp(_r, (erest))) {                                                         \
			fprintf(stderr, "    %s:%d: fg_url_parse(\"%s\") == %d: \"%s\" \"%s\" "    \
					"\"%s\"\n",                                                \
				__FILE__, __LINE__, (url), _ret, _h, _p, _r ? _r : "(null)");      \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define URL_BAD(url)                                                                               \
	do {                                                                                       \
		char _h[256], _p[8];                                                               \
		int _ret = fg_url_parse((url), _h, sizeof(_h), _p, sizeof(_p), NULL);             \
		if (_ret != -EINVAL) {                                                             \
			fprintf(stderr, "    %s:%d: fg_url_parse(\"%s\") == %d, expected -EINVAL\n", \
				__FILE__, __LINE__, (url), _ret);                                  \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

UNIT_TEST(step_ca_urls)
{
	URL_OK("https://ca.example:9000/1.0/sign", "ca.example", "9000", "/1.0/sign");
	URL_OK("https://ca.example:9000/sign", "ca.example", "9000", "/sign");
	URL_OK("https://ca.example/1.0/sign", "ca.example", "443", "/1.0/sign");
	URL_OK("https://127.0.0.1:9000", "127.0.0.1", "9000", "");
	URL_OK("https://localhost:1/", "localhost", "1", "/");
	URL_OK("https://a:65535?x=1", "a", "65535", "?x=1");
	URL_OK("https://a#frag", "a", "443", "#frag");
	URL_OK("HTTPS://CA.Example:9000/x", "CA.Example", "9000", "/x"); /* scheme case-blind */
}

UNIT_TEST(ipv6_literals)
{
	URL_OK("https://[::1]:9000/1.0/sign", "::1", "9000", "/1.0/sign");
	URL_OK("https://[2001:db8::1]/", "2001:db8::1", "443", "/");
	URL_BAD("https://[::1");
	URL_BAD("https://[::1]x/");
	URL_BAD("https://[::1]:/");
	URL_BAD("https://[]:9000/");
}

UNIT_TEST(malformed_authorities_are_refused)
{
	URL_BAD("http://ca.example/1.0/sign");
	URL_BAD("ca.example:9000");
	URL_BAD("https://");
	URL_BAD("https:///sign");
	URL_BAD("https://:9000/sign");
	URL_BAD("https://ca.example:/sign");
	URL_BAD("https://ca.example:0/");
	URL_BAD("https://ca.example:65536/");
	URL_BAD("https://ca.example:123456/");
	URL_BAD("https://ca.example:90x0/");
	URL_BAD("https://ca.example:-1/");
	URL_BAD("https://ca.example:+443/");
	/* userinfo: "https://ca.example@evil" names evil */
	URL_BAD("https://ca.example@evil.example/1.0/sign");
	URL_BAD("https://user:pw@ca.example/");
}

UNIT_TEST(buffers_are_bounded)
{
	char host[8], port[8];
	const char *rest;

	CHECK_EQ(fg_url_parse("https://1234567:1/", host, sizeof(host), port, sizeof(port), &rest),
		 0);
	CHECK(!strcmp(host, "1234567"));
	CHECK_EQ(fg_url_parse("https://12345678:1/", host, sizeof(host), port, sizeof(port), &rest),
		 -EINVAL);
	CHECK_EQ(fg_url_parse("https://a:443/", host, sizeof(host), port, 3, &rest), -EINVAL);
	CHECK_EQ(fg_url_parse("https://a:443/", host, sizeof(host), port, 4, &rest), 0);
	CHECK(!strcmp(port, "443"));
}

UNIT_MAIN("url", UNIT_CASE(step_ca_urls), UNIT_CASE(ipv6_literals),
	  UNIT_CASE(malformed_authorities_are_refused), UNIT_CASE(buffers_are_bounded))
