# Redis from Debian's packages (the job queue: jobs.backend = "redis").
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 10001 ivr && usermod -aG ivr redis
COPY docker/lib.sh /usr/local/lib/ivr/lib.sh
COPY docker/redis-entrypoint.sh /usr/local/bin/redis-entrypoint
RUN chmod 755 /usr/local/bin/redis-entrypoint
VOLUME /var/lib/redis
ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]
CMD ["redis"]
