/* asocket benchmarks: the load generator and the reference echo server, in C.
 *
 * Compiled at run time by servers.py with the system's `cc` (Linux: epoll):
 *
 *   cc -O2 -o native _native.c
 *   native client PORT CONNS SIZE WARMUP DURATION MODE   (MODE: echo or sink)
 *   native server                                        (prints "port N", echoes)
 *
 * client, mode echo: opens CONNS connections to 127.0.0.1:PORT; each sends a
 * request of SIZE bytes, waits until SIZE bytes came back, and sends the next
 * one. Requests completed during the WARMUP seconds are not counted; those
 * completed in the next DURATION seconds are. Mode sink: the connections send
 * nothing and only receive (the server streams), counting bytes.
 * The client prints one JSON object on stdout, then closes every connection.
 *
 * server: a single-threaded epoll echo server on 127.0.0.1, port chosen by
 * the kernel (printed as "port N"); it runs until killed, and at most
 * MAX_SECONDS (argument, default 600).
 *
 * Only loopback; every loop is bounded in time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct conn {
    int fd;
    size_t sent;     /* bytes of the current request sent */
    size_t received; /* bytes of the current echo received */
    int dead;
};

/* Send the rest of the current request; 0 when all sent, 1 when the kernel's
 * buffer is full (wait for EPOLLOUT), -1 on error. */
static int send_rest(struct conn *c, const char *req, size_t size) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, req + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
            return -1;
        }
        c->sent += (size_t)n;
    }
    return 0;
}

static int client(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: native client PORT CONNS SIZE WARMUP DURATION MODE\n");
        return 2;
    }
    int port = atoi(argv[2]);
    int nconns = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    double warmup = atof(argv[5]);
    double duration = atof(argv[6]);
    int sink = strcmp(argv[7], "sink") == 0;
    if (nconns < 1 || (!sink && size < 1)) {
        fprintf(stderr, "native client: CONNS and SIZE must be >= 1\n");
        return 2;
    }
    size_t bufsize = 262144;
    char *req = malloc(size ? size : 1);
    char *buf = malloc(bufsize);
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!req || !buf || !conns) return 3;
    memset(req, 'x', size ? size : 1);

    int ep = epoll_create1(0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            fprintf(stderr, "native client: connect: %s\n", strerror(errno));
            return 4;
        }
        set_nodelay(fd);
        set_nonblocking(fd);
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data = {.u32 = (unsigned)i}};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }

    double start = now();
    double t0 = start + warmup, t1 = t0 + duration;
    double cpu0 = 0.0, cpu_start = cpu_seconds();
    long long counted = 0, total = 0, bytes_counted = 0, bytes_total = 0;
    int errors = 0, alive = nconns, in_window = 0;
    if (!sink) {
        for (int i = 0; i < nconns; i++) {
            int r = send_rest(&conns[i], req, size);
            if (r < 0) { conns[i].dead = 1; errors++; alive--; }
            else if (r > 0) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data = {.u32 = (unsigned)i}};
                epoll_ctl(ep, EPOLL_CTL_MOD, conns[i].fd, &ev);
            }
        }
    }
    struct epoll_event events[256];
    double t = start;
    while (alive > 0) {
        t = now();
        if (!in_window && t >= t0) { in_window = 1; cpu0 = cpu_seconds(); }
        if (t >= t1) break;
        int n = epoll_wait(ep, events, 256, 10);
        if (n < 0 && errno != EINTR) break;
        for (int k = 0; k < n; k++) {
            struct conn *c = &conns[events[k].data.u32];
            if (c->dead) continue;
            if (events[k].events & EPOLLOUT) {
                int r = send_rest(c, req, size);
                if (r < 0) { c->dead = 1; errors++; alive--; continue; }
                if (r == 0) {
                    struct epoll_event ev = {.events = EPOLLIN, .data = {.u32 = events[k].data.u32}};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            ssize_t got = recv(c->fd, buf, bufsize, 0);
            if (got <= 0) {
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                c->dead = 1; errors++; alive--;
                continue;
            }
            bytes_total += got;
            if (in_window) bytes_counted += got;
            if (sink) continue;
            c->received += (size_t)got;
            while (c->received >= size && c->sent >= size) {
                c->received -= size;
                total++;
                if (in_window) counted++;
                c->sent = 0;
                int r = send_rest(c, req, size);
                if (r < 0) { c->dead = 1; errors++; alive--; break; }
                if (r > 0) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data = {.u32 = events[k].data.u32}};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    break;
                }
            }
        }
    }
    double end = now();
    double cpu1 = cpu_seconds();
    double window = in_window ? (end < t1 ? end : t1) - t0 : 0.0;
    if (window < 0) window = 0;
    printf("{\"requests\": %lld, \"total_requests\": %lld, \"bytes\": %lld, "
           "\"total_bytes\": %lld, \"seconds\": %.6f, \"elapsed\": %.6f, "
           "\"cpu_window\": %.6f, \"cpu_total\": %.6f, \"errors\": %d}\n",
           counted, total, bytes_counted, bytes_total, window, end - start,
           in_window ? cpu1 - cpu0 : 0.0, cpu1 - cpu_start, errors);
    fflush(stdout);
    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    close(ep);
    return 0;
}

struct pending {
    char *data;
    size_t len, off;
};

static int server(int argc, char **argv) {
    double max_seconds = argc > 2 ? atof(argv[2]) : 600.0;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        fprintf(stderr, "native server: %s\n", strerror(errno));
        return 4;
    }
    set_nonblocking(lfd);
    printf("port %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = lfd}};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    size_t bufsize = 65536;
    char *buf = malloc(bufsize);
    int maxfd = 65536;
    struct pending *pend = calloc((size_t)maxfd, sizeof *pend);
    if (!buf || !pend) return 3;
    double deadline = now() + max_seconds;
    struct epoll_event events[256];
    while (now() < deadline) {
        int n = epoll_wait(ep, events, 256, 500);
        for (int k = 0; k < n; k++) {
            int fd = events[k].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    if (c >= maxfd) { close(c); continue; }
                    set_nodelay(c);
                    struct epoll_event cev = {.events = EPOLLIN, .data = {.fd = c}};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            struct pending *p = &pend[fd];
            if (p->len) { /* writable: flush what is pending */
                ssize_t w = send(fd, p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN && errno != EINTR) goto drop;
                if (w > 0) p->off += (size_t)w;
                if (p->off == p->len) {
                    p->len = p->off = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data = {.fd = fd}};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
                }
                continue;
            }
            ssize_t got = recv(fd, buf, bufsize, 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got <= 0) goto drop;
            size_t off = 0;
            while (off < (size_t)got) {
                ssize_t w = send(fd, buf + off, (size_t)got - off, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR) continue;
                if (w < 0 && errno == EAGAIN) {
                    p->data = realloc(p->data, (size_t)got - off);
                    memcpy(p->data, buf + off, (size_t)got - off);
                    p->len = (size_t)got - off;
                    p->off = 0;
                    struct epoll_event cev = {.events = EPOLLOUT, .data = {.fd = fd}};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
                    break;
                }
                if (w < 0) goto drop;
                off += (size_t)w;
            }
            continue;
        drop:
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            free(p->data);
            p->data = NULL;
            p->len = p->off = 0;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "client") == 0) return client(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "server") == 0) return server(argc, argv);
    fprintf(stderr, "usage: native client ... | native server [MAX_SECONDS]\n");
    return 2;
}
