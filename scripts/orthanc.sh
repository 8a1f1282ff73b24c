#!/usr/bin/env bash
# Start Orthanc (Debian packages `orthanc orthanc-dicomweb`) with its own configuration, on
# loopback ports, storing into its own folder. Used by the tests and for a local demo:
#
#   scripts/orthanc.sh DATA_DIR [--http-port 8042] [--dicom-port 4242] [--aet ORTHANC] \
#                      [--stable-age 60] [--modality AET:HOST:PORT]
#
# Writes DATA_DIR/orthanc.json and runs Orthanc in the foreground (Ctrl-C or SIGTERM stops it).
# Orthanc 1.10 has no bind-address option: its DICOM and HTTP ports listen on every interface.
# `RemoteAccessAllowed: false` limits the REST API to loopback callers; on a shared machine also
# firewall the DICOM port (docs/service-pacs.md).
set -euo pipefail

usage() { sed -n '2,9p' "$0"; exit 2; }
[ $# -ge 1 ] || usage
data=$1; shift
http_port=8042; dicom_port=4242; aet=ORTHANC; stable_age=60; modalities=""
while [ $# -gt 0 ]; do
  case $1 in
    --http-port) http_port=$2; shift 2 ;;
    --dicom-port) dicom_port=$2; shift 2 ;;
    --aet) aet=$2; shift 2 ;;
    --stable-age) stable_age=$2; shift 2 ;;
    --modality) modalities="$modalities $2"; shift 2 ;;
    *) usage ;;
  esac
done

orthanc=$(command -v Orthanc || true)
[ -n "$orthanc" ] || { echo "Orthanc is not installed: apt-get install orthanc orthanc-dicomweb" >&2; exit 1; }
plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
[ -f "$plugin" ] || { echo "the DICOMweb plugin is missing: apt-get install orthanc-dicomweb" >&2; exit 1; }

mkdir -p "$data/storage" "$data/index"
entries=""
for m in $modalities; do
  IFS=: read -r m_aet m_host m_port <<<"$m"
  entries="$entries${entries:+,} \"$m_aet\": [\"$m_aet\", \"$m_host\", $m_port]"
done
cat > "$data/orthanc.json" <<JSON
{
  "Name": "pneumolens-orthanc",
  "StorageDirectory": "$data/storage",
  "IndexDirectory": "$data/index",
  "HttpPort": $http_port,
  "DicomPort": $dicom_port,
  "DicomAet": "$aet",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomAlwaysAllowStore": true,
  "DicomCheckCalledAet": false,
  "OverwriteInstances": true,
  "StableAge": $stable_age,
  "HttpTimeout": 60,
  "ConcurrentJobs": 2,
  "DicomModalities": { $entries },
  "Plugins": ["$plugin"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": true, "WadoRoot": "/wado", "Ssl": false, "StudiesMetadata": "Full", "SeriesMetadata": "Full" }
}
JSON
exec "$orthanc" "$data/orthanc.json"
