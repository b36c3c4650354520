#!/usr/bin/env bash
# Runs the gateway example with --metrics-addr and scrapes /metrics twice
# over HTTP: the stored-refs counter must be there and must grow.
set -euo pipefail
port=${1:-19187}
./target/release/examples/gateway --seconds 4 --metrics-addr "127.0.0.1:$port" > /tmp/mediastore-gateway-metrics.log 2>&1 &
gw=$!
# Retries until the endpoint answers *with the counter*: right after start-up
# the exporter may answer before the first store has registered it.
scrape() {
    local out="" value=""
    for _ in $(seq 1 50); do
        if out=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
                   printf 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3 &&
                   cat <&3) 2>/dev/null ); then
            value=$(echo "$out" | awk '/^mediastore_refs_stored_total /{print $2}')
            if [ -n "$value" ]; then
                echo "$value"
                return 0
            fi
        fi
        sleep 0.1
    done
    echo "metrics endpoint unreachable or without mediastore_refs_stored_total" >&2
    return 1
}
first=$(scrape)
sleep 1.5
second=$(scrape)
wait "$gw"
echo "mediastore_refs_stored_total: $first, then $second"
[ -n "$first" ] && [ -n "$second" ] && awk -v a="$first" -v b="$second" 'BEGIN { exit !(b > a) }'
