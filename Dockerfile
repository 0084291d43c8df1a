# kvmockd container image.
#
#   docker build -t kvmock .
#   docker run --rm -p 9090:9090 -p 8100-8103:8100-8103 \
#     -v $PWD/config/examples/single-worker.yaml:/etc/kvmock/config.yaml:ro kvmock
#
# The config is read from /etc/kvmock/config.yaml (mount yours there; the examples are in
# /etc/kvmock/examples/). The environment binds the admin server and the workers' HTTP
# ports to 0.0.0.0 so published ports are reachable; KVMOCK_* variables beat the file
# (config/README.md), so override them with -e rather than in the file.
#
# tests/deploy/dockerfile_build_stage.sh runs this build stage's RUN lines in CI, from a
# copy of the source tree as the working directory: keep its paths relative to WORKDIR.

FROM debian:bookworm AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN deploy/install-deps.sh --build
COPY . .
# -O2: the optimization level CI tests kvmockd at.
RUN cmake -S . -B build-image -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DKVMOCK_BUILD_TESTS=OFF -DKVMOCK_BUILD_BENCH=OFF \
 && cmake --build build-image --target kvmockd \
 && strip build-image/daemon/kvmockd

FROM debian:bookworm-slim AS runtime
COPY deploy/install-deps.sh /usr/local/share/kvmock/install-deps.sh
RUN /usr/local/share/kvmock/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kvmock \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin kvmock
COPY --from=build /src/build-image/daemon/kvmockd /usr/local/bin/kvmockd
COPY config/examples/ /etc/kvmock/examples/
ENV KVMOCK_ADMIN_LISTEN=0.0.0.0:9090 \
    KVMOCK_WORKERS_HTTP_HOST=0.0.0.0
USER 10001:10001
# Admin (/metrics /health /ready); worker i's OpenAI API on 8100 + i; vLLM-format ZMQ PUB
# and replay ports (workers.zmq_events) for up to 64 workers. Match your config.
EXPOSE 9090 8100-8163 5557-5620 5657-5720
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9090/health || exit 1
ENTRYPOINT ["/usr/local/bin/kvmockd"]
CMD ["run", "--config", "/etc/kvmock/config.yaml"]
