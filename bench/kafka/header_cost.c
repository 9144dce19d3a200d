/* What reading a message's headers costs a librdkafka consumer (bench/kafka/headers).
 *
 *   header_cost BROKERS TOPIC MODE RECORDS
 *
 * Consumes RECORDS messages of TOPIC from the beginning (a new group each run, a queue that
 * holds the whole topic) and exits. MODE 0 touches one byte of each value; MODE 1 also reads
 * the webmon-fields header (rd_kafka_message_headers + rd_kafka_header_get_last), which makes
 * librdkafka parse all of the message's headers, as kafka_source does for every message.
 * Prints the messages read and a checksum (so nothing is optimised away); the caller measures
 * CPU time. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void set(rd_kafka_conf_t* conf, const char* name, const char* value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "header_cost: %s: %s\n", name, err);
    exit(2);
  }
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: header_cost BROKERS TOPIC MODE RECORDS\n");
    return 2;
  }
  const int mode = atoi(argv[3]);
  const long want = atol(argv[4]);
  char group[64];
  snprintf(group, sizeof group, "header-cost-%d-%ld-%ld", mode, (long)time(NULL), (long)getpid());
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", argv[1]);
  set(conf, "group.id", group);
  set(conf, "auto.offset.reset", "earliest");
  set(conf, "enable.auto.commit", "false");
  set(conf, "queued.max.messages.kbytes", "2097151");
  set(conf, "queued.min.messages", "10000000");
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == NULL) {
    fprintf(stderr, "header_cost: %s\n", err);
    return 2;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  rd_kafka_message_t* msgs[1000];
  long n = 0;
  size_t sum = 0;
  const time_t deadline = time(NULL) + 300; /* a bound, should the topic hold fewer */
  while (n < want && time(NULL) < deadline) {
    const ssize_t got = rd_kafka_consume_batch_queue(queue, 1000, msgs, 1000);
    for (ssize_t i = 0; i < got; i++) {
      rd_kafka_message_t* m = msgs[i];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->len > 0) {
        n++;
        sum += (unsigned char)((const char*)m->payload)[m->len / 2];
        rd_kafka_headers_t* hdrs = NULL;
        if (mode == 1 && rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const void* value = NULL;
          size_t size = 0;
          if (rd_kafka_header_get_last(hdrs, "webmon-fields", &value, &size) ==
              RD_KAFKA_RESP_ERR_NO_ERROR) {
            sum += size;
          }
        }
      }
      rd_kafka_message_destroy(m);
    }
  }
  printf("%ld %zu\n", n, sum);
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return n == want ? 0 : 1;
}
