/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_LOG_H
#define FEDGATE_LOG_H

/*
 * One line per event on stderr: "2026-11-26T12:00:00.123Z fedgate[control] info: ...".
 * fg_log_init() names the process part; the default is "fedgate".
 */
enum fg_log_level { FG_LOG_DEBUG, FG_LOG_INFO, FG_LOG_WARN, FG_LOG_ERROR };

void fg_log_init(const char *who, enum fg_log_level min);
void fg_log(enum fg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fg_debug(...) fg_log(FG_LOG_DEBUG, __VA_ARGS__)
#define fg_info(...) fg_log(FG_LOG_INFO, __VA_ARGS__)
#define fg_warn(...) fg_log(FG_LOG_WARN, __VA_ARGS__)
#define fg_error(...) fg_log(FG_LOG_ERROR, __VA_ARGS__)

#endif
