# webmon's container image. Stage 1 builds the release preset and the Debian packages (cpack);
# stage 2 installs the webmon package with apt-get in a clean Debian, which also proves the
# package's dependencies, and runs webmon-agent as the user webmon.
#
#   docker build -t webmon .                  (or: podman build -t webmon .)
#   docker run --env-file .env -v "$PWD/certs:/etc/webmon/certs:ro" webmon producer
#   docker run --env-file .env -v "$PWD/certs:/etc/webmon/certs:ro" webmon consumer
#
# The argument is `producer`, `consumer` or a pipeline file; settings come from the environment
# (conf/.env.sample); see README.md, "Install".
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make cmake ninja-build pkg-config dpkg-dev file \
      libyaml-cpp-dev libboost-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev \
      libsimdjson-dev libcpp-httplib-dev libcurl4-openssl-dev libssl-dev libpcre2-dev \
      librdkafka-dev libpq-dev uuid-dev libjemalloc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG WEBMON_BUILD_JOBS=2
# Debian's hardening flags, all of them (dpkg-buildflags); no tests or benchmarks in the image.
RUN export DEB_BUILD_MAINT_OPTIONS=hardening=+all \
 && export CXXFLAGS="$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
           LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
 && cmake --preset release -DWEBMON_BUILD_TESTS=OFF -DWEBMON_BUILD_BENCH=OFF -DBUILD_TESTING=OFF \
 && cmake --build --preset release -j "$WEBMON_BUILD_JOBS" \
 && cd build/release \
 && cpack -G DEB \
 && mkdir /debs \
 && mv webmon_*.deb webmon-sdk-dev_*.deb /debs/

FROM debian:bookworm-slim
COPY --from=build /debs/ /debs/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates /debs/webmon_*.deb \
 && rm -rf /var/lib/apt/lists/*
COPY packaging/container/entrypoint.sh /usr/local/bin/webmon-entrypoint
COPY packaging/container/healthcheck.sh /usr/local/bin/webmon-healthcheck
ENV WEBMON_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 9464
USER webmon
WORKDIR /etc/webmon
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/webmon-healthcheck"]
ENTRYPOINT ["/usr/local/bin/webmon-entrypoint"]
