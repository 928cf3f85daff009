// SPDX-License-Identifier: MIT
/* Keys, certificates, passwords and durations for the CA and its client. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include "control/ca/pki.h"

/* --- passwords ------------------------------------------------------------------------------ */

static int prompt_tty(const char *prompt, char *buf, size_t size, size_t *len)
{
	struct termios old, noecho;
	int fd, ret = 0, echo_off;
	ssize_t n;
	size_t used = 0;
	char c;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -ENOTTY;
	echo_off = tcgetattr(fd, &old) == 0;
	if (echo_off) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &noecho);
	}
	if (write(fd, prompt, strlen(prompt)) < 0 || write(fd, ": ", 2) < 0)
		ret = -EIO;
	while (!ret && (n = read(fd, &c, 1)) == 1 && c != '\n') {
		if (used + 1 >= size) {
			ret = -E2BIG;
			break;
		}
		buf[used++] = c;
	}
	if (echo_off)
		tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0 && !ret)
		ret = -EIO;
	close(fd);
	buf[used] = '\0';
	*len = used;
	OPENSSL_cleanse(&c, sizeof(c));
	return ret;
}

int fg_password_get(struct fg_password *pw, struct fg_err *err)
{
	char again[sizeof(pw->buf)];
	size_t len2 = 0;
	char *data = NULL;
	size_t len = 0;
	int ret;

	if (pw->have)
		return 0;
	if (pw->file) {
		ret = fg_pki_read_file(pw->file, sizeof(pw->buf) - 1, &data, &len, err);
		if (ret)
			return fg_err_set(err, ret, "cannot read the password file %s: %s", pw->file,
					  ret == -EFBIG ? "longer than 255 bytes" : strerror(-ret));
		/* The first line, without its newline, as `step --password-file` takes it. */
		len = strcspn(data, "\r\n");
		memcpy(pw->buf, data, len);
		OPENSSL_cleanse(data, strlen(data));
		free(data);
	} else {
		ret = prompt_tty(pw->prompt ? pw->prompt : "Password", pw->buf, sizeof(pw->buf),
				 &len);
		if (ret == -ENOTTY)
			return fg_err_set(err, ret,
					  "a password is needed and there is no terminal to ask "
					  "on: use --password-file FILE");
		if (ret)
			return fg_err_set(err, ret, "cannot read the password: %s", strerror(-ret));
		if (pw->confirm) {
			ret = prompt_tty("Confirm the password", again, sizeof(again), &len2);
			if (!ret && (len2 != len || memcmp(again, pw->buf, len)))
				ret = fg_err_set(err, -EINVAL, "the passwords do not match");
			OPENSSL_cleanse(again, sizeof(again));
			if (ret)
				goto wipe;
		}
	}
	pw->buf[len] = '\0';
	pw->len = len;
	if (!len) {
		ret = fg_err_set(err, -EINVAL, "the password is empty%s%s",
				 pw->file ? " in " : "", pw->file ? pw->file : "");
		goto wipe;
	}
	pw->have = 1;
	return 0;
wipe:
	OPENSSL_cleanse(pw->buf, sizeof(pw->buf));
	return ret;
}

void fg_password_exit(struct fg_password *pw)
{
	if (!pw)
		return;
	OPENSSL_cleanse(pw->buf, sizeof(pw->buf));
	pw->len = 0;
	pw->have = 0;
}

int fg_password_cb(char *buf, int size, int rwflag, void *u)
{
	struct fg_password *pw = u;
	struct fg_err err = { 0 };

	(void)rwflag;
	if (!pw || fg_password_get(pw, &err)) {
		if (pw && err.msg[0])
			fprintf(stderr, "fedgate: %s\n", err.msg);
		return -1;
	}
	if ((int)pw->len > size)
		return -1;
	memcpy(buf, pw->buf, pw->len);
	return (int)pw->len;
}

/* --- files ---------------------------------------------------------------------------------- */

int fg_pki_write_file(const char *path, const void *data, size_t len, mode_t mode,
		      struct fg_err *err)
{
	char tmp[4096];
	size_t off = 0;
	int fd, ret = 0;

	/*
	 * mkostemp() creates a fresh name with O_EXCL (mode 0600) in the target's
	 * directory: nothing planted there beforehand (a symlink at a guessable
	 * PATH.tmp.PID) is ever opened, and rename(2) stays within one file system.
	 */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return fg_err_set(err, -ENAMETOOLONG, "path too long: %s", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return fg_err_set(err, -errno, "cannot create a temporary file next to %s: %s",
				  path, strerror(errno));
	while (!ret && off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = n < 0 ? -errno : -EIO;
		else
			off += (size_t)n;
	}
	/* The final mode only once the data is complete: readers never see a partial file. */
	if (!ret && fchmod(fd, mode))
		ret = -errno;
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return fg_err_set(err, ret, "cannot write %s: %s", path, strerror(-ret));
	}
	return 0;
}

int fg_pki_read_file(const char *path, size_t max, char **out, size_t *len,
		     struct fg_err *err)
{
	size_t used = 0, cap = 4096;
	char *buf = NULL, *nb;
	int fd, ret = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fg_err_set(err, -errno, "cannot read %s: %s", path, strerror(errno));
	for (;;) {
		if (used + 1 >= cap || !buf) {
			cap = buf ? cap * 2 : cap;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = fg_err_set(err, -errno, "cannot read %s: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			ret = fg_err_set(err, -EFBIG, "%s is larger than %zu bytes", path, max);
			break;
		}
	}
	close(fd);
	if (ret) {
		if (buf)
			OPENSSL_cleanse(buf, used);
		free(buf);
		return ret;
	}
	buf[used] = '\0';
	*out = buf;
	if (len)
		*len = used;
	return 0;
}

/* --- keys ----------------------------------------------------------------------------------- */

EVP_PKEY *fg_pki_keygen(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/*
 * PBKDF2-HMAC-SHA256 iterations for keys at rest: OWASP's 2023 figure for
 * PBKDF2-HMAC-SHA256. Each decryption costs about 0.3 s of one core, paid
 * once per `ca serve` start and per `ca token`.
 */
#define KEY_PBKDF2_ITER 600000

/* PKCS#8 EncryptedPrivateKeyInfo: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC, random salt and IV. */
static int encrypt_key(BIO *mem, EVP_PKEY *key, struct fg_password *pw)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	X509_ALGOR *pbe = NULL;
	X509_SIG *sig = NULL;
	int ret = -EIO;

	if (!p8)
		goto out;
	/* NULL salt and IV: random ones, the salt 128 bits (NIST SP 800-132). */
	pbe = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), KEY_PBKDF2_ITER, NULL, 16, NULL,
				   NID_hmacWithSHA256, NULL);
	if (!pbe)
		goto out;
	sig = PKCS8_set0_pbe_ex(pw->buf, (int)pw->len, p8, pbe, NULL, NULL);
	if (!sig)
		goto out;
	pbe = NULL; /* owned by sig */
	if (PEM_write_bio_PKCS8(mem, sig))
		ret = 0;
out:
	X509_SIG_free(sig);
	X509_ALGOR_free(pbe);
	PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the key material */
	return ret;
}

int fg_pki_write_key(const char *path, EVP_PKEY *key, struct fg_password *pw,
		     struct fg_err *err)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ret;

	if (!mem)
		return fg_err_set(err, -ENOMEM, "out of memory");
	if (pw) {
		ret = fg_password_get(pw, err);
		if (ret)
			goto free_bio;
	}
	if (pw ? encrypt_key(mem, key, pw)
	       : !PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)) {
		ret = fg_err_set(err, -EIO, "cannot encode the key for %s", path);
		fg_err_ssl(err);
		goto free_bio;
	}
	len = BIO_get_mem_data(mem, &data);
	ret = fg_pki_write_file(path, data, (size_t)len, 0600, err);
	OPENSSL_cleanse(data, (size_t)len); /* plain PEM when @pw is NULL */
free_bio:
	BIO_free(mem);
	return ret;
}

EVP_PKEY *fg_pki_read_key(const char *path, struct fg_password *pw, struct fg_err *err)
{
	EVP_PKEY *key = NULL;
	unsigned long e;
	BIO *in;

	in = BIO_new_file(path, "r");
	if (!in) {
		fg_err_set(err, -ENOENT, "cannot read the key %s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	key = PEM_read_bio_PrivateKey(in, NULL, fg_password_cb, pw);
	BIO_free(in);
	if (key) {
		ERR_clear_error();
		return key;
	}
	e = ERR_peek_last_error();
	if (ERR_GET_REASON(e) == EVP_R_BAD_DECRYPT || ERR_GET_REASON(e) == PEM_R_BAD_DECRYPT ||
	    ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ || (pw && pw->have)) {
		fg_err_set(err, -EACCES,
			   "cannot decrypt the key %s: wrong password (or the key is damaged)",
			   path);
		ERR_clear_error();
	} else {
		fg_err_set(err, -EINVAL, "%s is not a PEM private key", path);
		fg_err_ssl(err);
	}
	return NULL;
}

/* --- certificates ---------------------------------------------------------------------------- */

STACK_OF(X509) *fg_pki_certs_from_pem(const char *pem, size_t len, struct fg_err *err)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(pem, (int)len);
	X509 *x;

	if (!sk || !in || len > INT32_MAX) {
		fg_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			fg_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	/* The loop ends at the end of the text (PEM_R_NO_START_LINE) or at a bad block. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		fg_err_set(err, -EINVAL, "bad PEM certificate");
		fg_err_ssl(err);
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		fg_err_set(err, -EINVAL, "no PEM certificate");
		goto fail;
	}
	BIO_free(in);
	return sk;
fail:
	BIO_free(in);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

STACK_OF(X509) *fg_pki_read_certs(const char *path, struct fg_err *err)
{
	STACK_OF(X509) *sk;
	char *data = NULL;
	size_t len = 0;
	char why[sizeof(err->msg)];

	if (fg_pki_read_file(path, 4 << 20, &data, &len, err))
		return NULL;
	sk = fg_pki_certs_from_pem(data, len, err);
	free(data);
	if (!sk && err) {
		snprintf(why, sizeof(why), "%s", err->msg);
		fg_err_set(err, -EINVAL, "%s: %s", path, why);
	}
	return sk;
}

char *fg_pki_cert_pem(X509 *x)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (mem && PEM_write_bio_X509(mem, x)) {
		len = BIO_get_mem_data(mem, &data);
		out = strndup(data, (size_t)len);
	}
	BIO_free(mem);
	return out;
}

char *fg_pki_key_pem(EVP_PKEY *key)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (mem && PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)) {
		len = BIO_get_mem_data(mem, &data);
		out = strndup(data, (size_t)len);
		OPENSSL_cleanse(data, (size_t)len);
	}
	BIO_free(mem);
	return out;
}

char *fg_pki_certs_pem(STACK_OF(X509) *sk)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;
	int i;

	if (!mem)
		return NULL;
	for (i = 0; i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(mem, sk_X509_value(sk, i)))
			break;
	if (i == sk_X509_num(sk)) {
		len = BIO_get_mem_data(mem, &data);
		out = strndup(data, (size_t)len);
	}
	BIO_free(mem);
	return out;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -ENOMEM;
}

static int set_serial(X509 *x)
{
	unsigned char raw[16];
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn;
	int ret = -ENOMEM;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	raw[0] &= 0x7f; /* positive */
	raw[0] |= 0x40; /* and of a fixed length */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (ai && X509_set_serialNumber(x, ai))
		ret = 0;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ret;
}

int fg_pki_cn_fits(const char *cn)
{
	size_t n = 0;

	for (const char *s = cn; s && *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80; /* continuation bytes are not characters */
	return n > 0 && n <= FG_PKI_CN_MAX;
}

/* The subject; @cn NULL leaves the CN out. */
static X509_NAME *make_name(const char *org, const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (!n)
		return NULL;
	if (org && !X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
					       (const unsigned char *)org, -1, -1, 0))
		goto fail;
	if (cn && !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					      (const unsigned char *)cn, -1, -1, 0))
		goto fail;
	return n;
fail:
	X509_NAME_free(n);
	return NULL;
}

X509 *fg_pki_issue(const struct fg_pki_issue *req, struct fg_err *err)
{
	/*
	 * A leaf's CN is only a label, its SANs carry the identity: a subject that
	 * cannot be a CN (empty, or over X.520's 64 characters, as SPIFFE IDs often
	 * are) is left out, and the SANs are then critical (RFC 5280 4.2.1.6).
	 */
	int no_cn = !req->ca && req->sans && sk_GENERAL_NAME_num(req->sans) > 0 &&
		    !fg_pki_cn_fits(req->cn);
	X509 *x = X509_new();
	X509_NAME *subject = make_name(req->org, no_cn ? NULL : req->cn);
	const char *ku = "critical,digitalSignature";
	char bc[64];
	int ok;

	if (!x || !subject)
		goto fail;
	ok = X509_set_version(x, X509_VERSION_3) && !set_serial(x) &&
	     X509_set_subject_name(x, subject) &&
	     X509_set_issuer_name(x, req->issuer ? X509_get_subject_name(req->issuer) : subject) &&
	     ASN1_TIME_set(X509_getm_notBefore(x), (time_t)req->not_before) &&
	     ASN1_TIME_set(X509_getm_notAfter(x), (time_t)req->not_after) &&
	     X509_set_pubkey(x, req->pubkey);
	if (!ok)
		goto fail;
	if (req->ca) {
		if (req->pathlen >= 0)
			snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", req->pathlen);
		else
			snprintf(bc, sizeof(bc), "critical,CA:TRUE");
		ok = !add_ext(x, req->issuer, NID_basic_constraints, bc) &&
		     !add_ext(x, req->issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		/* As step's default leaf template: RSA keys may also do key transport. */
		if (EVP_PKEY_is_a(req->pubkey, "RSA"))
			ku = "critical,digitalSignature,keyEncipherment";
		ok = !add_ext(x, req->issuer, NID_basic_constraints, "critical,CA:FALSE") &&
		     !add_ext(x, req->issuer, NID_key_usage, ku) &&
		     !add_ext(x, req->issuer, NID_ext_key_usage, "serverAuth,clientAuth");
		if (ok && req->sans)
			ok = X509_add1_ext_i2d(x, NID_subject_alt_name, (void *)req->sans, no_cn,
					       X509V3_ADD_DEFAULT) == 1;
	}
	ok = ok && !add_ext(x, req->issuer, NID_subject_key_identifier, "hash");
	if (ok && req->issuer)
		ok = !add_ext(x, req->issuer, NID_authority_key_identifier, "keyid:always");
	if (!ok || !X509_sign(x, req->issuer_key, EVP_sha256()))
		goto fail;
	X509_NAME_free(subject);
	return x;
fail:
	fg_err_set(err, -EINVAL, "cannot issue the certificate for '%.100s'",
		   req->cn ? req->cn : "");
	fg_err_ssl(err);
	X509_NAME_free(subject);
	X509_free(x);
	return NULL;
}

/* --- durations, times, URLs ---------------------------------------------------------------- */

int fg_duration_parse(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "ms", 1 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };
	int64_t total = 0;
	int neg = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!*s)
		return -EINVAL;
	while (*s) {
		char *end;
		double v;
		size_t i;

		if (!(*s >= '0' && *s <= '9') && *s != '.')
			return -EINVAL;
		errno = 0;
		v = strtod(s, &end);
		if (end == s || errno || v < 0 || v > 1e12)
			return -EINVAL;
		s = end;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strncmp(s, units[i].unit, strlen(units[i].unit)))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		s += strlen(units[i].unit);
		total += (int64_t)(v * (double)units[i].ms);
		if (total > (int64_t)1e15)
			return -ERANGE;
	}
	*ms = neg ? -total : total;
	return 0;
}

int fg_time_parse(const char *s, int64_t *t)
{
	struct tm tm = { 0 };
	const char *p;
	int64_t off = 0;

	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') /* fractions of a second are dropped */
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int h = atoi(p + 1), m = atoi(p + 4);

		off = (int64_t)(h * 3600 + m * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*t = (int64_t)timegm(&tm) - off;
	return 0;
}

int fg_url_parse(const char *url, char *host, size_t host_len, char *port, size_t port_len,
		 const char **rest)
{
	const char *a, *end, *h, *colon = NULL;
	size_t hlen;

	if (strncasecmp(url, "https://", 8))
		return -EINVAL;
	a = url + 8;
	end = a + strcspn(a, "/?#");
	if (*a == '[') {
		const char *rb = memchr(a, ']', (size_t)(end - a));

		if (!rb)
			return -EINVAL;
		h = a + 1;
		hlen = (size_t)(rb - h);
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -EINVAL;
			colon = rb + 1;
		}
	} else {
		colon = memchr(a, ':', (size_t)(end - a));
		h = a;
		hlen = (size_t)((colon ? colon : end) - a);
	}
	if (hlen == 0 || hlen >= host_len || memchr(a, '@', (size_t)(end - a)))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon) {
		size_t plen = (size_t)(end - colon - 1);

		if (plen == 0 || plen >= port_len || plen > 5 ||
		    strspn(colon + 1, "0123456789") < plen)
			return -EINVAL;
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		if (atoi(port) < 1 || atoi(port) > 65535)
			return -EINVAL;
	} else {
		snprintf(port, port_len, "443");
	}
	if (rest)
		*rest = end;
	return 0;
}
