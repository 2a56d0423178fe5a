# The federator image: `federator run` (and `federator dns --upstream`) as a non-root user on
# a distroless base. Built in two stages: the release binary, then only it on top of glibc.
#
#   docker build -t federator:dev .
#
# Not built by the tests: the machines that run them have no container runtime.

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
# protox compiles the protos in pure Rust: no protoc needed.
RUN cargo build --release --locked -p federator \
 && strip target/release/federator

# glibc and libgcc, no shell, no package manager; user 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/federator /usr/local/bin/federator
USER 65532:65532
# DNS (UDP and TCP; an unprivileged port, a Service maps 53 to it), health and metrics,
# the gRPC registry API.
EXPOSE 5353/udp 5353/tcp 9090/tcp 9091/tcp
ENTRYPOINT ["/usr/local/bin/federator"]
CMD ["run"]
