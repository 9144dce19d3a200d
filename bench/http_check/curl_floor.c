// The libcurl floor for bench/http_check/run: TOTAL fresh-connection GETs of URL with CONC in
// flight on one thread (curl_multi_perform + curl_multi_poll, as http_check), with the fewest
// options possible and no record building; prints transfers/s and CPU per transfer. What
// http_check costs beyond this is the plugin and the host.
//
//   cc -O2 -o curl_floor curl_floor.c -lcurl && ./curl_floor URL TOTAL CONC
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
static size_t sink(char *d, size_t s, size_t n, void *u) { (void)d; (void)u; return s * n; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s URL TOTAL CONC\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  int total = atoi(argv[2]), conc = atoi(argv[3]);
  curl_global_init(CURL_GLOBAL_ALL);
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 0L);
  CURL **pool = calloc(conc, sizeof *pool); int npool = 0;
  int started = 0, done = 0, running = 0, inflight = 0;
  struct rusage r0, r1; getrusage(RUSAGE_SELF, &r0); double t0 = now();
  while (done < total) {
    while (inflight < conc && started < total) {
      CURL *e = npool ? pool[--npool] : curl_easy_init();
      curl_easy_reset(e);
      curl_easy_setopt(e, CURLOPT_URL, url);
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
      curl_easy_setopt(e, CURLOPT_PROXY, "");
      curl_multi_add_handle(m, e); started++; inflight++;
    }
    curl_multi_perform(m, &running);
    CURLMsg *msg; int left;
    while ((msg = curl_multi_info_read(m, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      if (msg->data.result != CURLE_OK) fprintf(stderr, "err %d\n", msg->data.result);
      curl_multi_remove_handle(m, msg->easy_handle); pool[npool++] = msg->easy_handle; inflight--; done++;
    }
    if (inflight >= conc || started >= total) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double el = now() - t0; getrusage(RUSAGE_SELF, &r1);
  double u = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6;
  double s = (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
  printf("%d %.3f %.3f %.3f\n", total, el, u, s);  /* transfers, wall s, user s, sys s */
  return 0;
}
