package io.grpclite.peers;

import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptors;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.testing.integration.TestServiceImpl;
import java.io.File;
import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * grpc-java's interop TestServiceImpl (with its echo-metadata interceptors) on 127.0.0.1, like
 * io.grpc.testing.integration.TestServiceServer but with certificate files given on the command
 * line instead of grpc-java's bundled test certificates.
 *
 * <p>Usage: {@code --port=N [--use_tls=true --tls_cert_file=chain.pem --tls_key_file=key.pem]}.
 * The key is PKCS#8 PEM. Prints one line once listening; SIGTERM stops it.
 */
public final class InteropServer {
  private InteropServer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> flags = new HashMap<>();
    for (String arg : args) {
      if (!arg.startsWith("--")) {
        throw new IllegalArgumentException("arguments look like --name=value: " + arg);
      }
      int eq = arg.indexOf('=');
      String name = arg.substring(2, eq < 0 ? arg.length() : eq);
      flags.put(name, eq < 0 ? "true" : arg.substring(eq + 1));
    }
    int port = Integer.parseInt(flags.getOrDefault("port", "0"));
    ServerCredentials credentials;
    if (Boolean.parseBoolean(flags.getOrDefault("use_tls", "false"))) {
      credentials = TlsServerCredentials.create(
          new File(flags.get("tls_cert_file")), new File(flags.get("tls_key_file")));
    } else {
      credentials = InsecureServerCredentials.create();
    }

    ScheduledExecutorService executor = Executors.newSingleThreadScheduledExecutor();
    InetSocketAddress address = new InetSocketAddress("127.0.0.1", port);
    Server server = NettyServerBuilder.forAddress(address, credentials)
        .maxInboundMessageSize(16 * 1024 * 1024) // as TestServiceServer (MAX_MESSAGE_SIZE)
        .addService(ServerInterceptors.intercept(
            new TestServiceImpl(executor), TestServiceImpl.interceptors()))
        .build()
        .start();

    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.shutdown();
      try {
        if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
          server.shutdownNow();
        }
      } catch (InterruptedException e) {
        server.shutdownNow();
        Thread.currentThread().interrupt();
      }
      executor.shutdownNow();
    }));

    System.out.println("grpc-java interop server listening on 127.0.0.1:" + server.getPort()
        + (credentials instanceof TlsServerCredentials ? " (TLS)" : " (plaintext)"));
    System.out.flush();
    server.awaitTermination();
  }
}
