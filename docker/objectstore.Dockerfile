# The S3-compatible object store the workers share artifacts through: versitygw over a folder (its posix backend),
# built at the version `npm run objectstore` builds. Each folder under /objects is a bucket; temporal-ml is made here.
FROM golang:1.25-bookworm AS build
RUN CGO_ENABLED=0 GOBIN=/out go install github.com/versity/versitygw/cmd/versitygw@v1.8.0

FROM debian:bookworm-slim
COPY --from=build /out/versitygw /usr/local/bin/versitygw
RUN mkdir -p /objects/temporal-ml
VOLUME /objects
EXPOSE 7070
CMD ["versitygw", "--port", ":7070", "--keep-alive", "--quiet", "posix", "/objects"]
