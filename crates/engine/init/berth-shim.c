/*
 * berth-shim: the steady state of a container's monitor.
 *
 * `berth monitor` (Rust) creates and starts the container, then replaces
 * itself (execve, same pid: the container's init stays its child) with this
 * small program, which holds the container while it runs:
 *   - reads the container's stdout/stderr (pipes) or its terminal's master,
 *     writes docker's json-file log (with rotation) and copies the output to
 *     attached clients as docker's multiplexed frames;
 *   - serves attach / wait / resize clients on the monitor's socket, and
 *     passes attached clients' input to the container's stdin;
 *   - starts the container's health checks (`berth health-check ROOT ID`)
 *     on their schedule;
 *   - when the init exits, drains the output and executes berth again
 *     (`berth monitor ... --resume ...`, from the fd of the berth binary it
 *     was given) with the exit code, the listening socket and the waiting
 *     clients, to record the exit and apply the restart policy.
 * The protocol and formats are those of crates/engine/src/monitor.rs and
 * logs.rs, which document them.
 *
 * It is freestanding (no libc: raw system calls, x86_64 and aarch64), so a
 * running container costs a few pages of memory rather than the megabytes a
 * libc and berth's own text would keep resident.
 *
 * Usage (built by the monitor; fds are inherited):
 *   berth-shim --pid PID --listen FD --exe FD [--out FD --err FD] [--pty FD]
 *     [--stdin FD] [--open-stdin] [--stdin-once]
 *     [--log PATH MAX_SIZE MAX_FILES]
 *     [--health FIRST_MS INTERVAL_MS START_INTERVAL_MS START_END_MS ROOT ID]
 *     [--client FD MODE]... -- RESUME_ARGV...
 * MODE: "w" (a waiter) or "a" followed by i/o/e (attached stdin, stdout,
 * stderr). berth is executed as RESUME_ARGV CODE WAITER_FDS ("-" if none).
 */

#include <asm/unistd.h>

typedef unsigned long usize;
typedef long isize;
typedef unsigned long long u64;
typedef long long i64;

/* ---- system calls ---------------------------------------------------- */

#if defined(__x86_64__)
static long sc(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
__asm__(".text\n.global _start\n_start:\n"
	"xor %rbp,%rbp\nmov %rsp,%rdi\nand $-16,%rsp\ncall shim_main\nhlt\n");
#elif defined(__aarch64__)
static long sc(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
__asm__(".text\n.global _start\n_start:\n"
	"mov x29,#0\nmov x0,sp\nbl shim_main\nb .\n");
#else
#error "berth-shim supports x86_64 and aarch64"
#endif

#define sc0(n) sc(n, 0, 0, 0, 0, 0, 0)
#define sc1(n, a) sc(n, (long)(a), 0, 0, 0, 0, 0)
#define sc2(n, a, b) sc(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sc3(n, a, b, c) sc(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sc4(n, a, b, c, d) sc(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sc5(n, a, b, c, d, e) sc(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* ABI constants (the same on x86_64 and aarch64) */
#define EINTR 4
#define EAGAIN 11
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_APPEND 02000
#define O_CLOEXEC 02000000
#define AT_FDCWD (-100)
#define AT_EMPTY_PATH 0x1000
#define F_GETFD 1
#define F_SETFD 2
#define FD_CLOEXEC 1
#define POLLIN 0x1
#define POLLOUT 0x4
#define SOL_SOCKET 1
#define SO_RCVTIMEO 20
#define SO_SNDTIMEO 21
#define SOCK_CLOEXEC O_CLOEXEC
#define SHUT_RDWR 2
#define MSG_DONTWAIT 0x40
#define TIOCSWINSZ 0x5414
#define WNOHANG 1
#define SIGCHLD 17
#define SIGPIPE 13
#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define SEEK_END 2

struct timespec_ {
	long sec, nsec;
};
struct pollfd_ {
	int fd;
	short events, revents;
};

void *memcpy(void *d, const void *s, usize n)
{
	char *dp = d;
	const char *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memset(void *d, int c, usize n)
{
	char *dp = d;
	while (n--)
		*dp++ = (char)c;
	return d;
}

static usize slen(const char *s)
{
	usize n = 0;
	while (s[n])
		n++;
	return n;
}

static int seq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* position of `needle` in the first `n` bytes of `hay`, or -1 */
static long find(const char *hay, usize n, const char *needle)
{
	usize m = slen(needle);
	for (usize i = 0; i + m <= n; i++) {
		usize j = 0;
		while (j < m && hay[i + j] == needle[j])
			j++;
		if (j == m)
			return (long)i;
	}
	return -1;
}

static i64 num(const char *s)
{
	i64 v = 0;
	int neg = *s == '-';
	if (neg)
		s++;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return neg ? -v : v;
}

/* decimal of v into b (room for 21 chars); returns the length */
static usize fmt_u(char *b, u64 v)
{
	char t[24];
	usize n = 0, i = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		b[i++] = t[--n];
	return i;
}

static void put_digits(char *b, u64 v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		b[i] = (char)('0' + v % 10);
}

static void die(const char *msg)
{
	sc3(__NR_write, 2, "berth-shim: ", 12);
	sc3(__NR_write, 2, msg, slen(msg));
	sc3(__NR_write, 2, "\n", 1);
	sc1(__NR_exit_group, 1);
	for (;;)
		;
}

static int write_all(int fd, const char *p, usize n)
{
	while (n) {
		long r = sc3(__NR_write, fd, p, n);
		if (r == -EINTR)
			continue;
		if (r == -EAGAIN) {
			/* a terminal master is non-blocking: wait until it drains */
			struct pollfd_ pf = {fd, POLLOUT, 0};
			struct timespec_ ts = {1, 0};
			if (sc4(__NR_ppoll, &pf, 1, &ts, 0) <= 0)
				return -1;
			continue;
		}
		if (r <= 0)
			return -1;
		p += r;
		n -= (usize)r;
	}
	return 0;
}

/* SIGPIPE: 1 ignores it (a client or the container's stdin going away must
 * not end the monitor), 0 restores the default (for the programs started) */
static void sigpipe(long ignore)
{
	/* the kernel's struct sigaction: handler, flags, then (x86_64) the
	 * restorer and the mask; all zero but the handler */
	long sa[4] = {ignore, 0, 0, 0};
	sc4(__NR_rt_sigaction, SIGPIPE, sa, 0, 8);
}

static void cloexec(int fd, int on)
{
	if (fd >= 0)
		sc3(__NR_fcntl, fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

static i64 now_ms(int clock)
{
	struct timespec_ t;
	sc2(__NR_clock_gettime, clock, &t);
	return (i64)t.sec * 1000 + t.nsec / 1000000;
}

/* ---- state ----------------------------------------------------------- */

#define MAX_LINE (16 * 1024) /* docker splits longer lines */
#define MAX_CLIENTS 64

struct client {
	int fd;
	char wait;		/* a waiter (else attached) */
	char in, out, err;	/* attached streams */
	char read_done;		/* reading from it is over */
};

static struct client clients[MAX_CLIENTS];
static int nclients;

static int init_pid, pidfd = -1, listen_fd = -1, exe_fd = -1;
static int out_fd = -1, err_fd = -1, pty_fd = -1, stdin_fd = -1;
static int open_stdin, stdin_once;

static const char *log_path;
static int log_fd = -1;
static u64 log_size, log_max;
static long log_files;
static char partial[2][MAX_LINE];
static usize partial_len[2];

static i64 health_next = -1; /* monotonic ms; -1: none */
static i64 health_interval, health_start_interval, health_start_end;
static const char *root_arg, *id_arg;

static char buf[32 * 1024];
/* one log record: a line escaped (at most 6 bytes a byte) and the rest */
static char rec[MAX_LINE * 6 + 128];

/* ---- the json-file log ----------------------------------------------- */

static void log_open(void)
{
	log_fd = (int)sc4(__NR_openat, AT_FDCWD, log_path,
			  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	if (log_fd < 0) {
		log_fd = -1;
		return;
	}
	long end = sc3(__NR_lseek, log_fd, 0, SEEK_END);
	log_size = end > 0 ? (u64)end : 0;
}

static void rotated_name(char *b, const char *path, long n)
{
	usize l = slen(path);
	memcpy(b, path, l);
	b[l] = '.';
	b[l + 1 + fmt_u(b + l + 1, (u64)n)] = 0;
}

static void log_rotate(void)
{
	char from[4096], to[4096];
	sc1(__NR_close, log_fd);
	log_fd = -1;
	if (slen(log_path) > 4000)
		return;
	if (log_files <= 1) {
		sc3(__NR_unlinkat, AT_FDCWD, log_path, 0);
	} else {
		for (long n = log_files - 1; n >= 1; n--) {
			if (n == 1)
				memcpy(from, log_path, slen(log_path) + 1);
			else
				rotated_name(from, log_path, n - 1);
			rotated_name(to, log_path, n);
			sc4(__NR_renameat, AT_FDCWD, from, AT_FDCWD, to);
		}
	}
	log_open();
	log_size = 0;
}

/* RFC 3339 UTC with nanoseconds, as berth-types' format_rfc3339 */
static usize fmt_time(char *b)
{
	struct timespec_ t;
	sc2(__NR_clock_gettime, CLOCK_REALTIME, &t);
	i64 secs = t.sec, days = secs / 86400, rem = secs % 86400;
	if (rem < 0)
		rem += 86400, days--;
	/* civil from days (proleptic Gregorian) */
	i64 z = days + 719468;
	i64 era = (z >= 0 ? z : z - 146096) / 146097;
	i64 doe = z - era * 146097;
	i64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	i64 y = yoe + era * 400;
	i64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	i64 mp = (5 * doy + 2) / 153;
	i64 d = doy - (153 * mp + 2) / 5 + 1;
	i64 m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	put_digits(b, (u64)y, 4);
	b[4] = '-';
	put_digits(b + 5, (u64)m, 2);
	b[7] = '-';
	put_digits(b + 8, (u64)d, 2);
	b[10] = 'T';
	put_digits(b + 11, (u64)(rem / 3600), 2);
	b[13] = ':';
	put_digits(b + 14, (u64)(rem % 3600 / 60), 2);
	b[16] = ':';
	put_digits(b + 17, (u64)(rem % 60), 2);
	b[19] = '.';
	put_digits(b + 20, (u64)t.nsec, 9);
	b[29] = 'Z';
	return 30;
}

/* length of the valid UTF-8 sequence at p (n bytes left), or the length
 * of its invalid maximal prefix negated (always at least 1) */
static int utf8_seq(const unsigned char *p, usize n)
{
	unsigned char c = p[0];
	int len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else
		return -1;
	for (int i = 1; i < len; i++) {
		if ((usize)i >= n)
			return -i;
		unsigned char b = p[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return -i;
	}
	return len;
}

/* appends `line` as a JSON string body, as serde_json writes
 * String::from_utf8_lossy(line) */
static usize json_escape(char *o, const unsigned char *s, usize n)
{
	static const char hex[] = "0123456789abcdef";
	usize k = 0;
	for (usize i = 0; i < n;) {
		unsigned char c = s[i];
		if (c >= 0x80) {
			int l = utf8_seq(s + i, n - i);
			if (l > 0) {
				memcpy(o + k, s + i, (usize)l);
				k += (usize)l;
				i += (usize)l;
			} else {
				o[k++] = (char)0xef, o[k++] = (char)0xbf, o[k++] = (char)0xbd;
				i += (usize)-l;
			}
			continue;
		}
		i++;
		switch (c) {
		case '"': o[k++] = '\\', o[k++] = '"'; break;
		case '\\': o[k++] = '\\', o[k++] = '\\'; break;
		case '\b': o[k++] = '\\', o[k++] = 'b'; break;
		case '\f': o[k++] = '\\', o[k++] = 'f'; break;
		case '\n': o[k++] = '\\', o[k++] = 'n'; break;
		case '\r': o[k++] = '\\', o[k++] = 'r'; break;
		case '\t': o[k++] = '\\', o[k++] = 't'; break;
		default:
			if (c < 0x20) {
				memcpy(o + k, "\\u00", 4);
				o[k + 4] = hex[c >> 4];
				o[k + 5] = hex[c & 15];
				k += 6;
			} else
				o[k++] = (char)c;
		}
	}
	return k;
}

static void log_record(int i, const char *line, usize n)
{
	if (log_fd < 0)
		return;
	usize k = 0;
	memcpy(rec, "{\"log\":\"", 8);
	k = 8;
	k += json_escape(rec + k, (const unsigned char *)line, n);
	const char *mid = i == 0 ? "\",\"stream\":\"stdout\",\"time\":\""
				 : "\",\"stream\":\"stderr\",\"time\":\"";
	memcpy(rec + k, mid, slen(mid));
	k += slen(mid);
	k += fmt_time(rec + k);
	memcpy(rec + k, "\"}\n", 3);
	k += 3;
	if (log_max && log_size > 0 && log_size + k > log_max)
		log_rotate();
	if (log_fd >= 0 && write_all(log_fd, rec, k) == 0)
		log_size += k;
}

/* output of stream i (0 stdout, 1 stderr) for the log: whole lines, long
 * ones split at MAX_LINE */
static void log_write(int i, const char *data, usize n)
{
	if (!log_path)
		return;
	while (n) {
		usize room = MAX_LINE - partial_len[i], take = 0;
		int nl = 0;
		while (take < n && take < room) {
			if (data[take++] == '\n') {
				nl = 1;
				break;
			}
		}
		memcpy(partial[i] + partial_len[i], data, take);
		partial_len[i] += take;
		data += take;
		n -= take;
		if (nl || partial_len[i] == MAX_LINE) {
			log_record(i, partial[i], partial_len[i]);
			partial_len[i] = 0;
		}
	}
}

static void log_flush(void)
{
	for (int i = 0; i < 2; i++)
		if (partial_len[i]) {
			log_record(i, partial[i], partial_len[i]);
			partial_len[i] = 0;
		}
}

/* ---- clients --------------------------------------------------------- */

static void drop_client(int i)
{
	sc2(__NR_shutdown, clients[i].fd, SHUT_RDWR);
	sc1(__NR_close, clients[i].fd);
	clients[i] = clients[--nclients];
}

static void set_timeout(int fd, int opt, long secs)
{
	struct timespec_ tv = {secs, 0}; /* struct timeval: the same layout */
	sc5(__NR_setsockopt, fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

static void add_client(int fd, const char *mode)
{
	if (nclients == MAX_CLIENTS) {
		sc1(__NR_close, fd);
		return;
	}
	struct client *c = &clients[nclients++];
	memset(c, 0, sizeof *c);
	c->fd = fd;
	if (mode[0] == 'w') {
		c->wait = 1;
		return;
	}
	for (const char *m = mode + 1; *m; m++) {
		if (*m == 'i')
			c->in = 1;
		if (*m == 'o')
			c->out = 1;
		if (*m == 'e')
			c->err = 1;
	}
	c->read_done = !c->in;
}

static void resize(const char *line, usize n)
{
	long at = find(line, n, "\"resize\":[");
	if (at < 0 || pty_fd < 0)
		return;
	const char *p = line + at + 10;
	unsigned short ws[4] = {0, 0, 0, 0};
	ws[0] = (unsigned short)num(p);
	while (*p && *p != ',' && *p != ']')
		p++;
	if (*p == ',')
		ws[1] = (unsigned short)num(p + 1);
	sc3(__NR_ioctl, pty_fd, TIOCSWINSZ, ws);
}

/* accepts pending clients and answers their request line */
static void accept_clients(void)
{
	for (;;) {
		int fd = (int)sc4(__NR_accept4, listen_fd, 0, 0, SOCK_CLOEXEC);
		if (fd == -EINTR)
			continue;
		if (fd < 0)
			return;
		set_timeout(fd, SO_RCVTIMEO, 2);
		set_timeout(fd, SO_SNDTIMEO, 5);
		char line[4096];
		usize n = 0;
		int ok = 0;
		while (n < sizeof line) {
			long r = sc3(__NR_read, fd, line + n, 1);
			if (r == -EINTR)
				continue;
			if (r != 1)
				break;
			if (line[n] == '\n') {
				ok = 1;
				break;
			}
			n++;
		}
		if (!ok)
			n = 0;
		if (find(line, n, "\"attach\":") >= 0) {
			char mode[5] = "a", *m = mode + 1;
			if (find(line, n, "\"stdin\":true") >= 0 && open_stdin)
				*m++ = 'i';
			if (find(line, n, "\"stdout\":true") >= 0)
				*m++ = 'o';
			if (find(line, n, "\"stderr\":true") >= 0)
				*m++ = 'e';
			*m = 0;
			if (write_all(fd, "\n", 1) == 0) {
				set_timeout(fd, SO_RCVTIMEO, 0);
				add_client(fd, mode);
			} else
				sc1(__NR_close, fd);
		} else if (find(line, n, "\"wait\":") >= 0) {
			if (write_all(fd, "\n", 1) == 0) {
				set_timeout(fd, SO_RCVTIMEO, 0);
				add_client(fd, "w");
			} else
				sc1(__NR_close, fd);
		} else {
			/* resize, wake or unknown: answered and closed */
			resize(line, n);
			write_all(fd, "\n", 1);
			sc1(__NR_close, fd);
		}
	}
}

/* container output of `stream` (1 stdout, 2 stderr) */
static void output(int stream, const char *data, usize n)
{
	log_write(stream - 1, data, n);
	char hdr[8] = {(char)stream, 0, 0, 0, (char)(n >> 24), (char)(n >> 16),
		       (char)(n >> 8), (char)n};
	for (int i = 0; i < nclients;) {
		struct client *c = &clients[i];
		int wants = !c->wait && ((stream == 1 && c->out) || (stream == 2 && c->err));
		if (wants && (write_all(c->fd, hdr, 8) || write_all(c->fd, data, n))) {
			drop_client(i);
			continue;
		}
		i++;
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		sc1(__NR_close, *fd);
	*fd = -1;
}

static void client_input(int i)
{
	struct client *c = &clients[i];
	/* never blocks: a stale readiness (a client replaced on the same fd
	 * number) must not stall the monitor */
	long n = sc(__NR_recvfrom, c->fd, (long)buf, sizeof buf, MSG_DONTWAIT, 0, 0);
	if (n == -EINTR || n == -EAGAIN)
		return;
	if (n < 0)
		n = 0;
	if (!c->wait && c->in) {
		if (n > 0) {
			if (stdin_fd >= 0 && write_all(stdin_fd, buf, (usize)n))
				close_fd(&stdin_fd);
		} else {
			c->read_done = 1;
			/* docker: with StdinOnce the container's stdin closes when
			 * the attached client's input ends */
			if (stdin_once && pty_fd < 0)
				close_fd(&stdin_fd);
		}
	} else if (c->wait && n == 0) {
		drop_client(i); /* the waiter went away */
	} else if (n == 0) {
		c->read_done = 1;
	}
}

/* ---- health checks --------------------------------------------------- */

static void health_check(char **envp)
{
	i64 now = now_ms(CLOCK_MONOTONIC);
	i64 wall = now_ms(CLOCK_REALTIME);
	int in_start = wall < health_start_end && health_start_interval > 0;
	health_next = now + (in_start ? health_start_interval : health_interval);
	long pid = sc5(__NR_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		int null = (int)sc4(__NR_openat, AT_FDCWD, "/dev/null", O_RDWR, 0);
		int log = (int)sc4(__NR_openat, AT_FDCWD, "health.log",
				   O_WRONLY | O_CREAT | O_APPEND, 0644);
		sc3(__NR_dup3, null, 0, 0);
		sc3(__NR_dup3, null, 1, 0);
		if (log >= 0)
			sc3(__NR_dup3, log, 2, 0);
		char *argv[] = {"berth", "health-check", (char *)root_arg, (char *)id_arg, 0};
		sigpipe(0);
		sc5(__NR_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
		sc1(__NR_exit_group, 127);
	}
	/* it forks away at once: no zombie left */
	if (pid > 0)
		while (sc4(__NR_wait4, pid, 0, 0, 0) == -EINTR)
			;
}

/* ---- main ------------------------------------------------------------ */

static int exit_code(int status)
{
	if ((status & 0x7f) == 0)
		return (status >> 8) & 0xff;
	return 128 + (status & 0x7f);
}

static void resume(char **resume_argv, int nresume, int code, char **envp)
{
	static char code_s[24], waiters[MAX_CLIENTS * 12 + 2];
	static char *argv[64];
	usize w = 0;
	code_s[fmt_u(code_s, (u64)code)] = 0;
	for (int i = 0; i < nclients;) {
		if (clients[i].wait) {
			if (w)
				waiters[w++] = ',';
			w += fmt_u(waiters + w, (u64)clients[i].fd);
			cloexec(clients[i].fd, 0);
			i++;
		} else
			drop_client(i);
	}
	if (!w)
		waiters[w++] = '-';
	waiters[w] = 0;
	cloexec(listen_fd, 0);
	int n = 0;
	for (int i = 0; i < nresume && n < 60; i++)
		argv[n++] = resume_argv[i];
	argv[n++] = code_s;
	argv[n++] = waiters;
	argv[n] = 0;
	sc5(__NR_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
	die("cannot execute berth to record the container's exit");
}

static void source_ready(int *fd, int stream)
{
	long n = sc3(__NR_read, *fd, buf, sizeof buf);
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n <= 0) {
		int was_pty = *fd == pty_fd;
		close_fd(fd);
		if (was_pty)
			close_fd(&stdin_fd);
		return;
	}
	output(stream, buf, (usize)n);
}

__attribute__((used)) void shim_main(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	char **resume_argv = 0;
	int nresume = 0;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		int left = argc - i - 1;
#define ARG(k) (left >= (k) ? argv[i + (k)] : (die("missing value"), (char *)0))
		if (seq(a, "--pid"))
			init_pid = (int)num(ARG(1)), i++;
		else if (seq(a, "--listen"))
			listen_fd = (int)num(ARG(1)), i++;
		else if (seq(a, "--exe"))
			exe_fd = (int)num(ARG(1)), i++;
		else if (seq(a, "--out"))
			out_fd = (int)num(ARG(1)), i++;
		else if (seq(a, "--err"))
			err_fd = (int)num(ARG(1)), i++;
		else if (seq(a, "--pty"))
			pty_fd = (int)num(ARG(1)), i++;
		else if (seq(a, "--stdin"))
			stdin_fd = (int)num(ARG(1)), i++;
		else if (seq(a, "--open-stdin"))
			open_stdin = 1;
		else if (seq(a, "--stdin-once"))
			stdin_once = 1;
		else if (seq(a, "--log")) {
			log_path = ARG(1);
			log_max = (u64)num(ARG(2));
			log_files = (long)num(ARG(3));
			i += 3;
		} else if (seq(a, "--health")) {
			i64 first = num(ARG(1));
			health_interval = num(ARG(2));
			health_start_interval = num(ARG(3));
			health_start_end = num(ARG(4));
			root_arg = ARG(5);
			id_arg = ARG(6);
			health_next = now_ms(CLOCK_MONOTONIC) + first;
			i += 6;
		} else if (seq(a, "--client")) {
			int fd = (int)num(ARG(1));
			cloexec(fd, 1);
			add_client(fd, ARG(2));
			i += 2;
		} else if (seq(a, "--")) {
			resume_argv = argv + i + 1;
			nresume = argc - i - 1;
			break;
		} else
			die("unknown argument");
#undef ARG
	}
	if (init_pid <= 0 || listen_fd < 0 || exe_fd < 0 || !nresume)
		die("--pid, --listen, --exe and the resume command are needed");
	sigpipe(1);
	/* nothing of ours leaks into the health checks */
	cloexec(listen_fd, 1);
	cloexec(exe_fd, 1);
	cloexec(out_fd, 1);
	cloexec(err_fd, 1);
	cloexec(pty_fd, 1);
	cloexec(stdin_fd, 1);
	if (log_path)
		log_open();
	pidfd = (int)sc2(__NR_pidfd_open, init_pid, 0);
	if (pidfd < 0)
		die("pidfd_open of the container's init failed");
	cloexec(pidfd, 1);

	int code = -1;
	i64 drain_deadline = -1;
	for (;;) {
		int sources = out_fd >= 0 || err_fd >= 0 || pty_fd >= 0;
		if (code >= 0 && (!sources || now_ms(CLOCK_MONOTONIC) >= drain_deadline)) {
			log_flush();
			resume(resume_argv, nresume, code, envp);
		}
		struct pollfd_ fds[6 + MAX_CLIENTS];
		int who[6 + MAX_CLIENTS]; /* -1 pidfd -2 out -3 err -4 pty -5 listener, else client */
		int n = 0;
#define WATCH(f, tag) (fds[n].fd = (f), fds[n].events = POLLIN, fds[n].revents = 0, who[n++] = (tag))
		if (code < 0)
			WATCH(pidfd, -1);
		if (out_fd >= 0)
			WATCH(out_fd, -2);
		if (err_fd >= 0)
			WATCH(err_fd, -3);
		if (pty_fd >= 0)
			WATCH(pty_fd, -4);
		WATCH(listen_fd, -5);
		for (int i = 0; i < nclients; i++)
			if (!clients[i].read_done)
				WATCH(clients[i].fd, clients[i].fd);
#undef WATCH
		i64 wake = drain_deadline;
		if (code < 0 && health_next >= 0)
			wake = health_next;
		struct timespec_ ts, *tp = 0;
		if (wake >= 0) {
			i64 left = wake - now_ms(CLOCK_MONOTONIC);
			if (left < 0)
				left = 0;
			ts.sec = left / 1000;
			ts.nsec = left % 1000 * 1000000;
			tp = &ts;
		}
		long r = sc4(__NR_ppoll, fds, n, tp, 0);
		if (r < 0 && r != -EINTR)
			die("poll failed");
		if (code < 0 && health_next >= 0 && now_ms(CLOCK_MONOTONIC) >= health_next)
			health_check(envp);
		if (r <= 0)
			continue;
		for (int k = 0; k < n; k++) {
			if (!fds[k].revents)
				continue;
			switch (who[k]) {
			case -1: {
				int status = 0;
				long p = sc4(__NR_wait4, init_pid, &status, WNOHANG, 0);
				if (p == init_pid) {
					code = exit_code(status);
					drain_deadline = now_ms(CLOCK_MONOTONIC) + 500;
				}
				break;
			}
			case -2: source_ready(&out_fd, 1); break;
			case -3: source_ready(&err_fd, 2); break;
			case -4: source_ready(&pty_fd, 1); break;
			case -5: accept_clients(); break;
			default:
				/* clients may have moved (dropped): find by fd */
				for (int i = 0; i < nclients; i++)
					if (clients[i].fd == who[k] && !clients[i].read_done) {
						client_input(i);
						break;
					}
			}
		}
	}
}
