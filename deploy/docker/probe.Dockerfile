# anycatch probe image: static binary on distroless, non-root.
#   docker build -f deploy/docker/probe.Dockerfile -t anycatch-probe .
#   docker run -d --name anycatch-probe --restart on-failure \
#     -e ANYCATCH_COLLECTOR=https://collector.example.net \
#     -e ANYCATCH_ENROLL_TOKEN=... -v anycatch-probe:/var/lib/anycatch-probe anycatch-probe
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/anycatch-probe ./cmd/anycatch-probe \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/anycatch-probe /usr/local/bin/anycatch-probe
# The state volume must be writable by the nonroot user (65532).
COPY --from=build --chown=65532:65532 /out/state /var/lib/anycatch-probe
USER 65532:65532
ENV ANYCATCH_STATE_DIR=/var/lib/anycatch-probe
VOLUME ["/var/lib/anycatch-probe"]
# As a non-root user the probe uses unprivileged ICMP sockets (Docker
# sets net.ipv4.ping_group_range for containers) and UDP traceroute;
# `anycatch-probe status` lists what that costs. For raw sockets run with
# --user 0 --cap-drop ALL --cap-add NET_RAW.
HEALTHCHECK --interval=60s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/anycatch-probe", "status", "--check"]
ENTRYPOINT ["/usr/local/bin/anycatch-probe"]
CMD ["run"]
