# kvmockd container image. Build: docker build -t kvmock .
# Run:   docker run --rm -p 9090:9090 -p 8100-8103:8100-8103 \
#          -v $PWD/config/examples/single-worker.yaml:/etc/kvmock/config.yaml kvmock
FROM debian:bookworm AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN deploy/install-deps.sh
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVMOCK_BUILD_TESTS=OFF \
      -DKVMOCK_BUILD_BENCH=OFF \
 && cmake --build /build --target kvmockd \
 && strip /build/daemon/kvmockd

FROM debian:bookworm-slim AS runtime
COPY deploy/install-deps.sh /usr/local/share/kvmock/install-deps.sh
RUN /usr/local/share/kvmock/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kvmock
COPY --from=build /build/daemon/kvmockd /usr/local/bin/kvmockd
COPY config/examples/ /etc/kvmock/examples/
USER kvmock
# Admin (/metrics /health /ready), worker OpenAI ports, vLLM-format ZMQ event ports.
EXPOSE 9090 8100-8163 5557-5620 5657-5720
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9090/health || exit 1
ENTRYPOINT ["/usr/local/bin/kvmockd"]
CMD ["run", "--config", "/etc/kvmock/config.yaml", "--set", "admin.listen=0.0.0.0:9090"]
