package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

/** Sluice-only: plain fetches of uncompressed data are served with sendfile. */
class ZeroCopyTest extends BrokerTestBase {
    static final String SENDFILE = "sluice_fetch_sendfile_bytes_total";
    static final String COPIED = "sluice_fetch_copied_bytes_total";

    @Test
    void fetchUsesSendfile() {
        assumeSluice("reads Sluice's /metrics");
        String topic = createTopic("zc", 2);
        int n = 10 * 1024;
        byte[] value = new byte[1024];
        new Random(7).nextBytes(value);
        Properties pp = producerProps();
        pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, i % 2, null, null, value));
            }
            p.flush();
        }
        double sendfileBefore = broker.metric(SENDFILE);
        double copiedBefore = broker.metric(COPIED);
        long recordBytes = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(null))) {
            List<ConsumerRecord<byte[], byte[]>> recs = readAll(c, topic, 2, n, Duration.ofSeconds(60));
            assertEquals(n, recs.size(), "records consumed");
            for (ConsumerRecord<byte[], byte[]> r : recs) {
                recordBytes += r.serializedValueSize() + Math.max(0, r.serializedKeySize());
            }
        }
        double sendfileDelta = broker.metric(SENDFILE) - sendfileBefore;
        double copiedDelta = broker.metric(COPIED) - copiedBefore;
        System.out.printf("zero-copy: consumed %d record bytes; sendfile +%.0f bytes, copied +%.0f bytes%n",
                recordBytes, sendfileDelta, copiedDelta);
        assertTrue(sendfileDelta >= recordBytes, "sluice_fetch_sendfile_bytes_total grew by " + sendfileDelta
                + " bytes while " + recordBytes + " record bytes were consumed (copied grew by " + copiedDelta + ")");
    }
}
