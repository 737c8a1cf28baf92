package dev.sluice.compat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The broker under test.
 *
 * <p>Connection contract shared by every compat suite:
 * <ul>
 *   <li>{@code KAFKA_BOOTSTRAP=host:port} set: use that broker as is (e.g. a real
 *       Kafka started by {@code compat-tests/kafka-dist/start-kafka}); tests that
 *       restart/kill the broker or read Sluice metrics are skipped.</li>
 *   <li>otherwise start Sluice: {@code $SLUICE_BIN} (default
 *       {@code <repo>/target/release/sluice}) as
 *       {@code sluice --listen 127.0.0.1:P --data-dir D --config F --metrics-listen 127.0.0.1:M},
 *       wait until P accepts TCP, stop with SIGTERM (SIGKILL for crash tests),
 *       restart on the same port and data dir.</li>
 * </ul>
 */
final class Broker implements AutoCloseable {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);

    private final String name;
    private final String bootstrap;
    private final boolean external;

    // Sluice only
    private Path binary;
    private Path workDir;
    private Path dataDir;
    private Path configFile;
    private Path logDir;
    private int port;
    private int metricsPort;
    private Process process;
    private int launches;

    private Broker(String name, String bootstrap, boolean external) {
        this.name = name;
        this.bootstrap = bootstrap;
        this.external = external;
    }

    /** Sluice's data directory (a managed broker only). */
    Path dataDir() {
        if (external) {
            throw new IllegalStateException("an external broker's files are not known here");
        }
        return dataDir;
    }

    static Broker start(String name) {
        return start(name, List.of());
    }

    /** As {@link #start(String)}, with more lines for Sluice's TOML config file. */
    static Broker start(String name, List<String> extraConfig) {
        String ext = System.getenv("KAFKA_BOOTSTRAP");
        if (ext != null && !ext.isBlank()) {
            return new Broker(name, ext.trim(), true);
        }
        try {
            int port = freePort();
            Broker b = new Broker(name, "127.0.0.1:" + port, false);
            b.port = port;
            b.metricsPort = freePort();
            b.binary = sluiceBinary();
            b.workDir = Files.createTempDirectory("sluice-compat-java-" + name + "-");
            b.dataDir = b.workDir.resolve("data");
            Files.createDirectories(b.dataDir);
            b.configFile = b.workDir.resolve("sluice.toml");
            List<String> config = new ArrayList<>(List.of(
                    "# written by compat-tests/java (Broker.java)",
                    "\"group.initial.rebalance.delay.ms\" = 0",
                    "\"auto.create.topics.enable\" = true"));
            config.addAll(extraConfig);
            config.add("");
            Files.writeString(b.configFile, String.join("\n", config));
            String logDirProp = System.getProperty("sluice.log.dir");
            b.logDir = logDirProp != null ? Paths.get(logDirProp) : b.workDir;
            Files.createDirectories(b.logDir);
            b.launch();
            return b;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path sluiceBinary() {
        String env = System.getenv("SLUICE_BIN");
        Path bin;
        if (env != null && !env.isBlank()) {
            bin = Paths.get(env);
        } else {
            String repo = System.getProperty("sluice.repo", "../..");
            bin = Paths.get(repo, "target", "release", "sluice");
        }
        bin = bin.toAbsolutePath().normalize();
        if (!Files.isExecutable(bin)) {
            throw new IllegalStateException("Sluice binary not found at " + bin
                    + " (build it with cargo build --release, set SLUICE_BIN, or set KAFKA_BOOTSTRAP"
                    + " to test against an already running broker)");
        }
        return bin;
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress("127.0.0.1", 0));
            return s.getLocalPort();
        }
    }

    boolean isExternal() {
        return external;
    }

    String bootstrap() {
        return bootstrap;
    }

    String name() {
        return name;
    }

    /** Path of the current Sluice log file (stdout+stderr), for failure messages. */
    Path logFile() {
        return logDir == null ? null : logDir.resolve(name + "-" + launches + ".log");
    }

    private void launch() throws IOException {
        launches++;
        List<String> cmd = new ArrayList<>(List.of(
                binary.toString(),
                "--listen", "127.0.0.1:" + port,
                "--data-dir", dataDir.toString(),
                "--config", configFile.toString(),
                "--metrics-listen", "127.0.0.1:" + metricsPort));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectErrorStream(true);
        pb.redirectOutput(logFile().toFile());
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        process = pb.start();
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new IllegalStateException("sluice exited with code " + process.exitValue()
                        + " during startup: " + String.join(" ", cmd) + "\n" + logTail());
            }
            if (portOpen(port)) {
                return;
            }
            if (System.nanoTime() > deadline) {
                process.destroyForcibly();
                throw new IllegalStateException("sluice did not accept connections on port " + port
                        + " within " + START_TIMEOUT + "\n" + logTail());
            }
            sleep(100);
        }
    }

    static boolean portOpen(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    String logTail() {
        Path f = logFile();
        if (f == null || !Files.exists(f)) {
            return "(no broker log)";
        }
        try {
            List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
            int from = Math.max(0, lines.size() - 40);
            return "--- last lines of " + f + " ---\n" + String.join("\n", lines.subList(from, lines.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(cannot read " + f + ": " + e + ")";
        }
    }

    /** SIGTERM, wait for exit, start again on the same port and data dir. */
    void restart() {
        requireOwned();
        stopGracefully();
        relaunch();
    }

    /** SIGKILL (kill -9), then start again on the same port and data dir. */
    void killAndRestart() {
        requireOwned();
        kill();
        relaunch();
    }

    void kill() {
        requireOwned();
        process.destroyForcibly();
        waitExit(STOP_TIMEOUT);
    }

    void stopGracefully() {
        requireOwned();
        if (!process.isAlive()) {
            return;
        }
        process.destroy(); // SIGTERM
        if (!waitExit(STOP_TIMEOUT)) {
            process.destroyForcibly();
            waitExit(STOP_TIMEOUT);
            throw new IllegalStateException("sluice did not exit within " + STOP_TIMEOUT + " of SIGTERM");
        }
    }

    /** Starts a stopped broker again on the same port and data dir. */
    void relaunch() {
        // The old listener may linger briefly; wait for the port to be free.
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (portOpen(port) && System.nanoTime() < deadline) {
            sleep(100);
        }
        try {
            launch();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private boolean waitExit(Duration d) {
        try {
            return process.waitFor(d.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private void requireOwned() {
        if (external) {
            throw new IllegalStateException("cannot control an external broker (KAFKA_BOOTSTRAP)");
        }
    }

    /** Sum of all samples of a Prometheus counter on GET /metrics (0 when absent). */
    double metric(String metricName) {
        requireOwned();
        String body = metricsText();
        double sum = 0;
        boolean seen = false;
        for (String line : body.split("\n")) {
            line = line.trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String nameAndLabels;
            String rest;
            int brace = line.indexOf('{');
            int space = line.indexOf(' ');
            if (brace >= 0 && (space < 0 || brace < space)) {
                int close = line.indexOf('}', brace);
                nameAndLabels = line.substring(0, brace);
                rest = line.substring(close + 1).trim();
            } else if (space > 0) {
                nameAndLabels = line.substring(0, space);
                rest = line.substring(space + 1).trim();
            } else {
                continue;
            }
            if (!nameAndLabels.equals(metricName)) {
                continue;
            }
            String value = rest.split("\\s+")[0];
            sum += Double.parseDouble(value);
            seen = true;
        }
        if (!seen) {
            throw new AssertionError("metric " + metricName + " not found in GET /metrics:\n" + body);
        }
        return sum;
    }

    String metricsText() {
        requireOwned();
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + "/metrics"))
                .timeout(Duration.ofSeconds(10)).GET().build();
        try {
            HttpResponse<String> resp = client.send(req, HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() != 200) {
                throw new AssertionError("GET /metrics returned HTTP " + resp.statusCode() + ": " + resp.body());
            }
            return resp.body();
        } catch (IOException e) {
            throw new UncheckedIOException("GET http://127.0.0.1:" + metricsPort + "/metrics failed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        if (external || process == null) {
            return;
        }
        try {
            stopGracefully();
        } finally {
            if (System.getenv("SLUICE_KEEP_DATA") == null && workDir != null) {
                deleteTree(dataDir);
            }
        }
    }

    private static void deleteTree(Path root) {
        if (root == null || !Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
