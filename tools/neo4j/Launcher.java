// Runs a real Neo4j 5 Community DBMS in this JVM, with its Bolt connector on a loopback
// port, for ProvKB's tests and for people without Docker. Started by tools/neo4j/start:
//
//   java --add-opens=... -cp "$(cat classpath)" Launcher.java HOME PORT PASSWORD_FILE
//
// HOME holds the data (it survives a stop and a start). The password of user `neo4j` is
// read from PASSWORD_FILE and set on every start. The launcher writes HOME/ready once
// Bolt answers and stops cleanly when HOME/stop appears, on SIGTERM/SIGINT, or, given a
// fourth argument WATCH_PID, when that process has ended (a test session that died).

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.QueryExecutionException;

public class Launcher {
    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable e) {
            e.printStackTrace();
            System.exit(1); // the DBMS's own threads would keep a failed start alive
        }
    }

    private static void run(String[] args) throws Exception {
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = Integer.parseInt(args[1]);
        String password = Files.readString(Path.of(args[2])).strip();
        Path ready = home.resolve("ready");
        Path stop = home.resolve("stop");
        Files.deleteIfExists(ready);
        Files.deleteIfExists(stop);

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
            .setConfig(BoltConnector.enabled, true)
            .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
            .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
            .setConfig(HttpConnector.enabled, false)
            .setConfig(HttpsConnector.enabled, false)
            .setConfig(GraphDatabaseSettings.auth_enabled, true)
            // a test server reads no files for LOAD CSV (what a team server should set too)
            .setConfig(GraphDatabaseSettings.allow_file_urls, false)
            .setConfig(GraphDatabaseSettings.pagecache_memory, 256L * 1024 * 1024)
            .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(5))
            .build();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> shutdown(dbms, ready)));

        // Embedded code runs with full rights: set the password (the first start's default
        // `neo4j` would otherwise have to be changed by the first client).
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try {
            system.executeTransactionally(
                "ALTER USER neo4j SET PLAINTEXT PASSWORD $password CHANGE NOT REQUIRED",
                java.util.Map.of("password", password));
        } catch (QueryExecutionException e) {
            if (!e.getMessage().contains("cannot be the same")) {
                throw e; // the same password again (a restart) is what we want
            }
        }
        dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME)
            .executeTransactionally("RETURN 1");
        Files.writeString(ready, "bolt://127.0.0.1:" + port + "\n");
        System.out.println("Neo4j ready on bolt://127.0.0.1:" + port);

        java.util.Optional<ProcessHandle> watched = args.length > 3 && !args[3].isEmpty()
            ? ProcessHandle.of(Long.parseLong(args[3]))
            : java.util.Optional.empty();
        boolean watching = args.length > 3 && !args[3].isEmpty();
        while (!Files.exists(stop)) {
            if (watching && watched.map(p -> !p.isAlive()).orElse(true)) {
                System.out.println("the watched process has ended");
                break;
            }
            Thread.sleep(200);
        }
        System.exit(0); // runs the shutdown hook
    }

    private static synchronized void shutdown(DatabaseManagementService dbms, Path ready) {
        try {
            Files.deleteIfExists(ready);
            dbms.shutdown();
            System.out.println("Neo4j stopped");
        } catch (Exception e) {
            e.printStackTrace();
        }
    }
}
