#!/bin/sh
# The config-fetch init container's script (run by the AWS CLI image as
# `sh -c`): fetch the config objects this task definition names, each at its
# exact version, into the task's shared "config" volume, then exit 0 so that
# the prober container starts.
#
#   CONFIG_BUCKET   the versioned bucket
#   CONFIG_OBJECTS  space-separated key@version-id pairs; the key's first path
#                   segment is dropped: config/flows/checkout.yaml@3HL4kqt...
#                   becomes $CONFIG_DEST/flows/checkout.yaml
#   CONFIG_DEST     where to write (default /etc/prober)
set -eu
dest_root="${CONFIG_DEST:-/etc/prober}"
n=0
for obj in ${CONFIG_OBJECTS:-}; do
  key="${obj%@*}"
  version="${obj##*@}"
  rel="${key#*/}"
  case "$key" in */*) ;; *) rel="" ;; esac
  case "$rel" in
  "" | /* | *..*)
    echo "config-fetch: refusing object key \"$key\"" >&2
    exit 1
    ;;
  esac
  dest="$dest_root/$rel"
  mkdir -p "$(dirname "$dest")"
  aws s3api get-object --bucket "$CONFIG_BUCKET" --key "$key" --version-id "$version" "$dest" >/dev/null
  n=$((n + 1))
done
if [ "$n" -eq 0 ]; then
  echo "config-fetch: CONFIG_OBJECTS names no object" >&2
  exit 1
fi
echo "config-fetch: $n object(s) from s3://$CONFIG_BUCKET at their pinned versions into $dest_root"
