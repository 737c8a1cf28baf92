package dev.sluice.pipelines.spark;

import org.apache.spark.sql.SparkSession;

/** The in-process Spark every test shares: local[2], no UI, small shuffles. */
final class Spark {
    private Spark() {
    }

    static SparkSession session() {
        // getOrCreate hands back the same session to every test class of the JVM;
        // Spark stops it from its own shutdown hook.
        return SparkSession.builder()
                .appName("sluice-spark-pipelines")
                .master("local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.sql.warehouse.dir", "target/spark-warehouse")
                .getOrCreate();
    }
}
