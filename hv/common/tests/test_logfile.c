// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Issue 12, defect 4: what a guest makes hv write is bounded. A console file
 * stays under its cap however much the guest prints, and keeps the newest
 * output; a message a guest can trigger in a loop is logged a few times,
 * not a million.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "logfile.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof(buf) - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void test_cap(void)
{
    char path[] = "/tmp/hv-logfile-XXXXXX";
    int fd = mkstemp(path);
    struct logfile lf;
    logfile_init(&lf, fd, 4096);
    char line[100];
    for (int i = 0; i < 300; i++) {
        snprintf(line, sizeof(line), "line %05d %s\n", i, "................................");
        CHECK(logfile_write(&lf, line, strlen(line)) == 0);
        struct stat st;
        CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size <= 4096);
    }
    size_t len;
    char *text = slurp(path, &len);
    CHECK(text && strstr(text, "reached its limit of 4096 bytes and started again"));
    CHECK(text && strstr(text, "line 00299")); /* the newest output is there */
    CHECK(text && !strstr(text, "line 00000"));
    CHECK(lf.restarts >= 3); /* 13 200 bytes through a 4 KiB file */

    /* One write bigger than the cap: its tail is kept, the cap holds. */
    static char big[10000];
    memset(big, 'x', sizeof(big));
    memcpy(big + sizeof(big) - 4, "END\n", 4);
    CHECK(logfile_write(&lf, big, sizeof(big)) == 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size <= 4096);
    text = slurp(path, &len);
    CHECK(text && len >= 4 && memcmp(text + len - 4, "END\n", 4) == 0);
    close(fd);
    unlink(path);

    /* A pipe is not a file: no cap, nothing truncated. */
    int p[2];
    CHECK(pipe(p) == 0);
    logfile_init(&lf, p[1], 16);
    CHECK(!lf.capped && logfile_write(&lf, "0123456789012345678901234", 25) == 0);
    char back[32];
    CHECK(read(p[0], back, sizeof(back)) == 25);
    close(p[0]);
    close(p[1]);
}

static void test_rate_limit(void)
{
    char path[] = "/tmp/hv-ratelimit-XXXXXX";
    int fd = mkstemp(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    for (int i = 0; i < 100000; i++)
        log_warn_limited("the guest did the same odd thing again (%d)", i);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    size_t len;
    char *text = slurp(path, &len);
    unsigned lines = 0;
    for (size_t i = 0; text && i < len; i++)
        lines += text[i] == '\n';
    fprintf(stderr, "100000 triggers -> %u log lines\n", lines);
    CHECK(lines == HV_RATELIMIT_BURST);
    CHECK(text && strstr(text, "again (0)") && strstr(text, "again (9)") &&
          !strstr(text, "again (10)"));
    close(fd);
    unlink(path);
}

int main(void)
{
    hv_log_init("test");
    test_cap();
    test_rate_limit();
    CHECK_DONE();
}
