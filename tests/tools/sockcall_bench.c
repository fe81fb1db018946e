/*
 * tools/sockcall_bench.c — what the socket system calls of one proxied HTTP/1.1 exchange cost here,
 * read/write/writev (libuv streams) against recv/send/sendmsg (proxy/stream.c): a loopback TCP
 * ping-pong in one process, a 200-byte request and a 1,200-byte answer in two pieces, the two sets
 * alternating in ten slices so the host's drift hits both. Prints CPU µs per round trip for each.
 *   build/tests/tools/sockcall_bench [round trips (default 200000)]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static double cpu_seconds(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    if (n < 10)
        n = 10;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) < 0) {
        perror("listen");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    if (s < 0) {
        perror("accept");
        return 1;
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char req[200], resp[1200], buf[65536];
    memset(req, 'q', sizeof req);
    memset(resp, 'r', sizeof resp);
    double t[2] = {0, 0};
    for (int slice = 0; slice < 10; slice++) {
        for (int mode = 0; mode < 2; mode++) {
            double t0 = cpu_seconds();
            for (long i = 0; i < n / 10; i++) {
                struct iovec v[2] = {{resp, 200}, {resp + 200, 1000}};
                ssize_t k;
                if (mode == 0) {
                    k = write(c, req, sizeof req);
                    k += read(s, buf, sizeof buf);
                    k += writev(s, v, 2);
                    k += read(c, buf, sizeof buf);
                } else {
                    struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
                    k = send(c, req, sizeof req, MSG_NOSIGNAL);
                    k += recv(s, buf, sizeof buf, 0);
                    k += sendmsg(s, &m, MSG_NOSIGNAL);
                    k += recv(c, buf, sizeof buf, 0);
                }
                if (k <= 0) {
                    perror("ping-pong");
                    return 1;
                }
            }
            t[mode] += cpu_seconds() - t0;
        }
    }
    printf("read/write/writev: %.3f us per round trip; recv/send/sendmsg: %.3f us (%+.1f%%)\n", t[0] / (double)n * 1e6,
           t[1] / (double)n * 1e6, (t[1] / t[0] - 1) * 100);
    close(c);
    close(s);
    close(l);
    return 0;
}
