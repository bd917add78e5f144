# Asterisk 22 from Debian's packages (Debian sid carries it; bookworm does not). It runs on
# the config that `ivr pbx render` writes into the shared data volume (pbx.external).
# BASE_IMAGE: any Debian sid image; a machine without a registry passes one it built
# (debootstrap --variant=minbase sid DIR; tar -C DIR -c . | docker import - NAME).
ARG BASE_IMAGE=debian:sid-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# sid's Release file on a mirror may be "expired": Check-Valid-Until=false, as `ivr pbx build`.
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get -o Acquire::Check-Valid-Until=false update \
 && apt-get install -y --no-install-recommends \
      asterisk asterisk-modules asterisk-core-sounds-en asterisk-core-sounds-en-wav \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /usr/lib/asterisk \
 && { [ -e /usr/lib/asterisk/modules ] || ln -s "$(ls -d /usr/lib/*/asterisk/modules | head -n1)" /usr/lib/asterisk/modules; } \
 && test -e /usr/lib/asterisk/modules/res_pjsip.so \
 && groupadd -g 10001 ivr && useradd -u 10001 -g 10001 -M -d /data -s /usr/sbin/nologin ivr \
 && mkdir -p /data && chown 10001:10001 /data
COPY docker/lib.sh /usr/local/lib/ivr/lib.sh
COPY docker/asterisk-entrypoint.sh /usr/local/bin/asterisk-entrypoint
RUN chmod 755 /usr/local/bin/asterisk-entrypoint
VOLUME /data
ENTRYPOINT ["/usr/local/bin/asterisk-entrypoint"]
CMD ["asterisk"]
