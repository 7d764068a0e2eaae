# anycatch-server: collector + API + web UI in one static binary.
# Build from the repository root:  docker build -f deploy/docker/server.Dockerfile .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/anycatch-server ./cmd/anycatch-server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/anycatch-server /usr/local/bin/anycatch-server
USER nonroot:nonroot
EXPOSE 8080
# The server needs DATABASE_URL in a container: the embedded-PostgreSQL mode
# needs the postgres binaries, which this minimal image does not carry.
ENTRYPOINT ["/usr/local/bin/anycatch-server"]
CMD ["serve", "--listen", ":8080"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/anycatch-server", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
