package dev.sluice.pipelines;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/** A test class with plain Kafka clients of its own, opened before each test and closed after. */
public abstract class KafkaTest {
    protected Kafka kafka;

    @BeforeEach
    void openKafka() {
        kafka = new Kafka();
    }

    @AfterEach
    void closeKafka() {
        kafka.close();
    }
}
