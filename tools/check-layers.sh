#!/bin/sh
# Fails when a lower layer includes a higher one. Order, lowest first:
order="base io text tensor models explain render tasks api serve cli"
rank() { i=0; for l in $order; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i+1)); done; echo 99; }
bad=0
for f in $(find src -name '*.[ch]'); do
  layer=$(echo "$f" | cut -d/ -f2)
  r=$(rank "$layer")
  for inc in $(grep -oE '^#include "[a-z]+/' "$f" | sed -E 's/#include "([a-z]+)\//\1/'); do
    ri=$(rank "$inc")
    if [ "$ri" -gt "$r" ]; then
      echo "layer violation: $f ($layer) includes $inc/" >&2
      bad=1
    fi
  done
done
exit $bad
