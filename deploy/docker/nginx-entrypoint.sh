#!/bin/sh
# Entrypoint of Kitteh's nginx images: renders every /etc/nginx/templates/NAME.template into
# /etc/nginx/conf.d/NAME (as the official nginx image's entrypoint does), then runs the
# command, nginx, as PID 1.
#
# Only KITTEH_* variables are substituted (the official image's NGINX_ENVSUBST_FILTER=^KITTEH_),
# and only those set in the environment: nginx's own $uri, $host... pass through, and a
# placeholder nobody set stays visible, so `nginx` refuses the configuration and says where.
set -eu

variables=$(env | sed -n 's/^\(KITTEH_[A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
for template in /etc/nginx/templates/*.template; do
    [ -e "$template" ] || continue  # no template at all: the glob stays as it is
    output="/etc/nginx/conf.d/$(basename "$template" .template)"
    envsubst "$variables" < "$template" > "$output"
done
exec "$@"
