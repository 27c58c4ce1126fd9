/* acd-agi-native: the classic AGI relay, compiled.
 *
 * Asterisk starts one process per AGI() step.  The Python script (acd-agi,
 * script.py) costs an interpreter start-up per step, 10-25 ms of CPU: a burst
 * of calls queues for the CPU.  This program does the same job for about a
 * millisecond: it connects to the dispatcher's UNIX socket and forwards the
 * AGI stream both ways without interpreting it ("raw" relay, protocol
 * acd-agi-relay/2, see relay.py), so the dispatcher runs the call exactly as a
 * FastAGI connection.  What it adds to the bytes:
 *
 *   - the preamble line "acd-agi-relay/2" before the AGI environment;
 *   - a "HANGUP" line (what Asterisk itself sends over FastAGI) when SIGHUP
 *     arrives, at a line boundary of the stream, at most once;
 *   - the dispatcher's "acd-relay-end STATUS" line ends the session and is not
 *     passed on to Asterisk;
 *   - when the dispatcher cannot be reached or is lost, the channel gets
 *     ACD_STATUS=ERROR, ACD_ERROR, ACD_ERROR_DETAIL and a VERBOSE line, and
 *     stderr one line "acd-agi: CODE: detail".
 *
 * Exit status as acd-agi: 0 done (OK, HANGUP or a dropped session), 1 error
 * reported to the channel, 2 no AGI environment or a bad option.
 *
 * Signals first: SIGHUP is caught by main()'s first statement; before it only
 * the dynamic loader runs (well under a millisecond). */

#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* struct timeval with glibc */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef ACD_VERSION
#define ACD_VERSION "unknown"
#endif

#define DEFAULT_SOCKET "/run/acd/agi.sock"
#define PREAMBLE "acd-agi-relay/2\n"
#define END_MARK "acd-relay-end "
#define MAX_LINE (1 << 20)     /* longest command line from the dispatcher */
#define CONNECT_TIMEOUT_S 5
#define HANGUP_GRACE_MS 60000  /* the dispatcher's time to end the session after a hang-up */
#define REPLY_WAIT_MS 5000     /* Asterisk's time to answer one of our own commands */

static const char USAGE[] =
    "usage: acd-agi-native [--socket PATH] SCRIPT[?key=value&...] [key=value ...]\n"
    "\n"
    "Classic AGI relay for acd, compiled: the same job as acd-agi at a fraction of\n"
    "its cost.  Link it into agi-bin as acd-agi and say in the dialplan\n"
    "  AGI(acd-agi,enqueue?queue=support&priority=2)\n"
    "Asterisk runs it with the AGI environment on stdin; it is not meant to be run\n"
    "by hand.  The socket is --socket PATH, else $ACD_AGI_SOCKET, else\n"
    "/run/acd/agi.sock.  Exit status: 0 done, 1 error reported to the channel\n"
    "(ACD_STATUS=ERROR), 2 no usable AGI environment or bad options.\n"
    "\n"
    "options:\n"
    "  --socket PATH  the dispatcher's relay socket\n"
    "  -h, --help     show this help and exit\n"
    "  --version      show the version and exit\n";

static volatile sig_atomic_t hung_up = 0;
static int wake_w = -1;

static void on_sighup(int signum) {
    int saved = errno;
    (void)signum;
    hung_up = 1;
    if (wake_w >= 0) {
        ssize_t ignored = write(wake_w, "", 1); /* full pipe: already woken */
        (void)ignored;
    }
    errno = saved;
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------ Asterisk's side */

static int asterisk_gone = 0;  /* stdin at EOF or stdout broken */
static char in_buf[65536];     /* bytes read from stdin, not yet consumed; bounds the environment */
static size_t in_len = 0;

/* Read more of stdin, waiting at most timeout_ms (-1: forever).  1 data, 0 timeout, -1 EOF/error. */
static int fill_stdin(int wake_r, int timeout_ms) {
    long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        struct pollfd fds[2] = {{0, POLLIN, 0}, {wake_r, POLLIN, 0}};
        int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
        if (deadline >= 0 && left < 0)
            left = 0;
        int r = poll(fds, 2, left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r == 0)
            return 0;
        if (r > 0 && (fds[1].revents & POLLIN)) {
            char drain[64];
            ssize_t ignored = read(wake_r, drain, sizeof drain);
            (void)ignored;
        }
        if (r > 0 && fds[0].revents) {
            ssize_t n = read(0, in_buf + in_len, sizeof in_buf - in_len);
            if (n > 0) {
                in_len += (size_t)n;
                return 1;
            }
            if (n < 0 && errno == EINTR)
                continue;
            asterisk_gone = 1;
            return -1;
        }
    }
}

/* Drop one complete line from in_buf.  Returns its length or -1 when no line is complete. */
static long take_line(char *first4) {
    char *nl = memchr(in_buf, '\n', in_len);
    if (nl == NULL)
        return -1;
    size_t len = (size_t)(nl - in_buf) + 1;
    if (first4 != NULL) {
        memset(first4, 0, 4);
        memcpy(first4, in_buf, len < 4 ? len : 4);
    }
    memmove(in_buf, in_buf + len, in_len - len);
    in_len -= len;
    return (long)len;
}

static int is_final_reply(const char *first4) {
    return first4[0] >= '0' && first4[0] <= '9' && first4[1] >= '0' && first4[1] <= '9' && first4[2] >= '0' &&
           first4[2] <= '9' && first4[3] == ' ';
}

/* Read and discard Asterisk's replies until `count` final reply lines were seen. */
static void skip_replies(int wake_r, int count) {
    long deadline = now_ms() + REPLY_WAIT_MS;
    char first4[4];
    while (count > 0 && !asterisk_gone) {
        long len = take_line(first4);
        if (len >= 0) {
            if (is_final_reply(first4))
                count--;
            continue;
        }
        if (in_len == sizeof in_buf)
            in_len = 0; /* an absurd line: forget it, keep counting */
        long left = deadline - now_ms();
        if (left <= 0 || fill_stdin(wake_r, (int)left) <= 0)
            return;
    }
}

/* Append `text` as one quoted AGI argument: control characters blanked, `limit` bytes at most. */
static void append_arg(char *out, size_t cap, const char *text, size_t limit) {
    size_t o = strlen(out), n = strlen(text), i;
    int cut = n > limit;
    if (cut) {
        n = limit - 3;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--; /* not inside a UTF-8 sequence */
    }
    if (o + 2 < cap)
        out[o++] = ' ', out[o++] = '"';
    for (i = 0; i < n && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\')
            out[o++] = '\\';
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (cut && o + 4 < cap)
        out[o++] = '.', out[o++] = '.', out[o++] = '.';
    if (o + 2 < cap)
        out[o++] = '"';
    out[o] = '\0';
}

/* Tell the channel and stderr about an error; best effort, as acd-agi does.  Returns 1. */
static int script_error(int wake_r, const char *code, const char *fmt, ...) {
    char detail[1024], verbose[1300], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    fprintf(stderr, "acd-agi: %s: %s%s\n", code, detail, hung_up ? "; the channel had hung up" : "");
    fflush(stderr);
    snprintf(verbose, sizeof verbose, "acd: %s: %s", code, detail);
    const char *names[3] = {"ACD_STATUS", "ACD_ERROR", "ACD_ERROR_DETAIL"};
    const char *values[3] = {"ERROR", code, detail};
    for (int i = 0; i < 4 && !asterisk_gone; i++) {
        if (i < 3) {
            strcpy(line, "SET VARIABLE");
            append_arg(line, sizeof line, names[i], 200);
            append_arg(line, sizeof line, values[i], 200);
        } else {
            strcpy(line, "VERBOSE");
            append_arg(line, sizeof line, verbose, 400);
            strcat(line, " \"1\"");
        }
        strcat(line, "\n");
        if (write_all(1, line, strlen(line)) < 0) {
            asterisk_gone = 1;
            break;
        }
        skip_replies(wake_r, 1);
    }
    return 1;
}

/* Read the AGI environment (up to its empty line) into in_buf.  0 done, else an exit status. */
static int read_environment(int wake_r, size_t *env_len) {
    size_t scanned = 0;
    for (;;) {
        /* the environment ends with an empty line: "\n" at the start or "\n\n" */
        if (in_len > 0 && in_buf[0] == '\n') {
            *env_len = 1;
            return 0;
        }
        for (size_t i = scanned ? scanned : 1; i < in_len; i++) {
            if (in_buf[i] == '\n' && in_buf[i - 1] == '\n') {
                *env_len = i + 1;
                return 0;
            }
        }
        scanned = in_len;
        if (in_len == sizeof in_buf) {
            fprintf(stderr, "acd-agi: PROTOCOL: cannot read the AGI environment: longer than %zu bytes%s\n",
                    sizeof in_buf, hung_up ? "; the channel had hung up" : "");
            return 2;
        }
        if (fill_stdin(wake_r, -1) < 0) {
            fprintf(stderr, "acd-agi: PROTOCOL: cannot read the AGI environment: %s%s\n",
                    in_len ? "input ended inside it" : "no input", hung_up ? "; the channel had hung up" : "");
            return 2;
        }
    }
}

/* ------------------------------------------------------------ the dispatcher's side */

static int connect_dispatcher(const char *path, int *error) {
    struct sockaddr_un addr;
    if (strlen(path) >= sizeof addr.sun_path) {
        *error = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        *error = errno;
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* a UNIX connect blocks while the listener's backlog is full: bound it */
    struct timeval tv = {CONNECT_TIMEOUT_S, 0}, none = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, path);
    int r;
    do {
        r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        *error = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
        close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    return fd;
}

struct relay {
    int sock, wake_r;
    int in_usage;        /* inside a multi-line 520 reply */
    int hangup_sent;
    int pending;         /* commands passed to Asterisk and not yet answered */
    char first4[4];      /* start of the current line from Asterisk */
    size_t col;          /* its length so far */
    char *line;          /* the current line from the dispatcher */
    size_t line_len;
    char *part;          /* the end of Asterisk's input, not yet a whole line: held back */
    size_t part_len;
};

static void maybe_send_hangup(struct relay *r) {
    if (hung_up && !r->hangup_sent && !r->in_usage) {
        r->hangup_sent = 1;
        write_all(r->sock, "HANGUP\n", 7); /* a failure shows up on the next read */
    }
}

/* Forward Asterisk's input to the dispatcher a whole line at a time, noting final replies.
 * Holding a partial line back keeps the stream between lines, so a hang-up goes at once,
 * before the reply it interrupted (as acd-agi relays it).  -1 and errno on failure. */
static int forward_from_asterisk(struct relay *r, const char *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (r->col < 4)
            r->first4[r->col] = data[i];
        r->col++;
        if (data[i] == '\n') {
            if (r->col < 5)
                memset(r->first4 + (r->col - 1), 0, 5 - r->col);
            if (is_final_reply(r->first4)) {
                r->in_usage = 0;
                if (r->pending > 0)
                    r->pending--;
            } else if (memcmp(r->first4, "520-", 4) == 0) {
                r->in_usage = 1;
            } else if (memcmp(r->first4, "HANG", 4) == 0) {
                r->hangup_sent = 1; /* Asterisk said it itself */
            }
            r->col = 0;
        }
    }
    /* counted before writing: a reply that could not go was still given */
    size_t whole = len;
    while (whole > 0 && data[whole - 1] != '\n')
        whole--;
    if (whole > 0) {
        if (r->part_len > 0 && write_all(r->sock, r->part, r->part_len) < 0)
            return -1;
        r->part_len = 0;
        if (write_all(r->sock, data, whole) < 0)
            return -1;
    }
    if (len > whole) {
        if (r->part_len + (len - whole) > MAX_LINE) {
            errno = EMSGSIZE;
            return -1;
        }
        char *grown = realloc(r->part, r->part_len + (len - whole));
        if (grown == NULL)
            return -1;
        r->part = grown;
        memcpy(r->part + r->part_len, data + whole, len - whole);
        r->part_len += len - whole;
    }
    return 0;
}

/* The dispatcher is gone: what Asterisk sent of a line goes back to in_buf, where
 * skip_replies() finishes reading it. */
static void take_back_partial(struct relay *r) {
    size_t n = r->part_len < sizeof in_buf ? r->part_len : sizeof in_buf;
    memcpy(in_buf, r->part, n);
    in_len = n;
    r->part_len = 0;
}

/* How a failed exchange with the dispatcher reads in the report. */
static const char *lost_reason(int error) {
    return error == EPIPE || error == ECONNRESET ? "the dispatcher closed the connection" : strerror(error);
}

/* One complete line from the dispatcher: pass it on, or the end of the session. */
static int on_dispatcher_line(struct relay *r, const char *line, size_t len, int *status) {
    size_t mark = sizeof END_MARK - 1;
    if (len >= mark && memcmp(line, END_MARK, mark) == 0) {
        *status = len >= mark + 5 && memcmp(line + mark, "ERROR", 5) == 0 ? 1 : 0;
        return 1;
    }
    if (write_all(1, line, len) < 0) {
        asterisk_gone = 1;
        return -1;
    }
    r->pending++;
    return 0;
}

static int run_relay(struct relay *r) {
    char chunk[65536];
    long grace_until = -1;
    for (;;) {
        maybe_send_hangup(r);
        if (r->hangup_sent && grace_until < 0)
            grace_until = now_ms() + HANGUP_GRACE_MS;
        struct pollfd fds[3] = {{r->sock, POLLIN, 0}, {r->wake_r, POLLIN, 0}, {asterisk_gone ? -1 : 0, POLLIN, 0}};
        int timeout = grace_until < 0 ? -1 : (int)(grace_until - now_ms());
        if (grace_until >= 0 && timeout <= 0)
            return script_error(r->wake_r, "DISPATCHER_LOST", "no word from the dispatcher within %d s of the hang-up",
                                HANGUP_GRACE_MS / 1000);
        int n = poll(fds, 3, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return script_error(r->wake_r, "INTERNAL", "poll: %s", strerror(errno));
        }
        if (fds[1].revents & POLLIN) {
            ssize_t ignored = read(r->wake_r, chunk, 64);
            (void)ignored;
        }
        if (fds[2].revents) {
            ssize_t got = read(0, chunk, sizeof chunk);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                /* Asterisk closed our stdin: the channel is gone, nothing more to relay */
                asterisk_gone = 1;
                hung_up = 1;
                maybe_send_hangup(r);
                return 0;
            }
            if (forward_from_asterisk(r, chunk, (size_t)got) < 0) {
                int error = errno;
                take_back_partial(r);
                skip_replies(r->wake_r, r->pending);
                return script_error(r->wake_r, "DISPATCHER_LOST", error == EPIPE || error == ECONNRESET ? "%s" :
                                    "relay connection failed: %s", lost_reason(error));
            }
        }
        if (fds[0].revents) {
            ssize_t got = read(r->sock, chunk, sizeof chunk);
            if (got < 0 && errno == EINTR)
                continue;
            if (got > 0 && grace_until >= 0) /* the grace runs from the dispatcher's last word */
                grace_until = now_ms() + HANGUP_GRACE_MS;
            if (got <= 0) {
                int error = got == 0 ? EPIPE : errno;
                take_back_partial(r);
                skip_replies(r->wake_r, r->pending); /* Asterisk must be waiting for a command again */
                return script_error(r->wake_r, "DISPATCHER_LOST", error == EPIPE || error == ECONNRESET ? "%s" :
                                    "relay connection failed: %s", lost_reason(error));
            }
            for (ssize_t i = 0; i < got;) {
                char *nl = memchr(chunk + i, '\n', (size_t)(got - i));
                size_t take = nl ? (size_t)(nl - (chunk + i)) + 1 : (size_t)(got - i);
                if (r->line_len + take > MAX_LINE)
                    return script_error(r->wake_r, "PROTOCOL", "a line from the dispatcher is longer than %d bytes",
                                        MAX_LINE);
                char *grown = realloc(r->line, r->line_len + take);
                if (grown == NULL)
                    return script_error(r->wake_r, "INTERNAL", "out of memory");
                r->line = grown;
                memcpy(r->line + r->line_len, chunk + i, take);
                r->line_len += take;
                i += (ssize_t)take;
                if (nl != NULL) {
                    int status = 0, done = on_dispatcher_line(r, r->line, r->line_len, &status);
                    r->line_len = 0;
                    if (done > 0) {
                        take_back_partial(r);
                        skip_replies(r->wake_r, r->pending); /* let Asterisk finish what it was told */
                        return status;
                    }
                    if (done < 0) { /* Asterisk is gone: tell the dispatcher, as a hang-up */
                        hung_up = 1;
                        maybe_send_hangup(r);
                        return 0;
                    }
                }
            }
        }
    }
}

int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sighup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed peer is an error return, not death */

    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("acd-agi-native (acd %s)\n", ACD_VERSION);
            return 0;
        }
        if (strcmp(a, "--socket") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                fputs("acd-agi: --socket needs a path\n", stderr);
                return 2;
            }
            path = argv[++i];
        } else if (strncmp(a, "--socket=", 9) == 0) {
            path = a + 9;
        } else if (a[0] == '-') {
            fprintf(stderr, "acd-agi: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (path == NULL || path[0] == '\0')
        path = getenv("ACD_AGI_SOCKET");
    if (path == NULL || path[0] == '\0')
        path = DEFAULT_SOCKET;

    int wake[2];
    if (pipe(wake) < 0) {
        fprintf(stderr, "acd-agi: INTERNAL: pipe: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(wake[i], F_SETFL, fcntl(wake[i], F_GETFL) | O_NONBLOCK);
        fcntl(wake[i], F_SETFD, FD_CLOEXEC);
    }
    wake_w = wake[1];

    size_t env_len = 0;
    int bad = read_environment(wake[0], &env_len);
    if (bad)
        return bad;

    int error = 0;
    int sock = connect_dispatcher(path, &error);
    if (sock < 0) {
        in_len -= env_len; /* Asterisk now waits for a command */
        memmove(in_buf, in_buf + env_len, in_len);
        return script_error(wake[0], "UNAVAILABLE", "dispatcher unavailable at %s: %s", path, strerror(error));
    }
    struct relay r = {sock, wake[0], 0, 0, 0, {0}, 0, NULL, 0, NULL, 0};
    /* what came after the environment (nothing, normally) goes on as Asterisk's */
    if (write_all(sock, PREAMBLE, sizeof PREAMBLE - 1) < 0 || write_all(sock, in_buf, env_len) < 0 ||
        forward_from_asterisk(&r, in_buf + env_len, in_len - env_len) < 0) {
        int error = errno;
        in_len -= env_len;
        memmove(in_buf, in_buf + env_len, in_len);
        return script_error(wake[0], "DISPATCHER_LOST", error == EPIPE || error == ECONNRESET ? "%s" :
                            "relay connection failed: %s", lost_reason(error));
    }
    in_len = 0;
    return run_relay(&r);
}
