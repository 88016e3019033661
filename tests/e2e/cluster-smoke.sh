#!/usr/bin/env bash
# End-to-end smoke test of the project's own cluster (scripts/dev-cluster):
# a Docker-built image pushed to localhost:5000 runs as a Deployment; exec, logs, port-forward,
# a NodePort and a ClusterIP Service, the kubernetes Service VIP from a pod, the KEP-1755
# ConfigMap and service-account tokens all work.
# Brings the cluster up first when it is not healthy (set STILT_SMOKE_NO_UP=1 to only test).
# Last line: "N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PASS=0
FAIL=0
pass() { PASS=$((PASS + 1)); echo "ok   - $1"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL - $1${2:+: $2}"; }
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; exit $?; }

T0=$(date +%s)
if [ "${STILT_SMOKE_NO_UP:-0}" != 1 ] && ! "$REPO/scripts/dev-cluster" status >/dev/null 2>&1; then
  echo "# cluster not healthy: running scripts/dev-cluster up"
  if ! "$REPO/scripts/dev-cluster" up >/dev/null; then
    fail "scripts/dev-cluster up"
    finish
  fi
fi
eval "$("$REPO/scripts/dev-cluster" env)"
if "$REPO/scripts/dev-cluster" status >/dev/null 2>&1; then pass "cluster healthy (dev-cluster status)"; else fail "cluster healthy"; finish; fi
if [ "$(command -v kubectl)" = "$STILT_CLUSTER_BIN/kubectl" ] && kubectl version 2>/dev/null | grep -q "Server Version: v1\."; then
  pass "project-built kubectl on PATH talks to the cluster ($(kubectl version 2>/dev/null | sed -n 's/Server Version: //p'))"
else
  fail "project-built kubectl on PATH" "$(command -v kubectl)"
fi

TOKEN=$(openssl rand -hex 4)
NS=stilt-smoke-$TOKEN
IMG=localhost:5000/stilt-smoke/web:$TOKEN
BODY="stilt smoke $TOKEN"
PF_PID=
CTX=$(mktemp -d)
cleanup() {
  [ -n "$PF_PID" ] && kill "$PF_PID" 2>/dev/null
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1
  docker rmi "$IMG" >/dev/null 2>&1
  rm -rf "$CTX"
}
trap cleanup EXIT

# --- image built with Docker, pushed to the cluster's registry
"$REPO/scripts/test-images" >/dev/null 2>&1
mkdir -p "$CTX/www"
echo "$BODY" >"$CTX/www/index.html"
cat >"$CTX/Dockerfile" <<'EOF'
FROM stilt-test/busybox:latest
COPY www /www
CMD ["sh", "-c", "echo smoke-log-$(cat /www/index.html | cut -d' ' -f3); exec httpd -f -p 8080 -h /www"]
EOF
if DOCKER_BUILDKIT=0 docker build -q -t "$IMG" "$CTX" >/dev/null 2>&1 && docker push -q "$IMG" >/dev/null 2>&1 \
   && curl -sf "http://127.0.0.1:5000/v2/stilt-smoke/web/tags/list" | grep -q "$TOKEN"; then
  pass "docker build + push to localhost:5000"
else
  fail "docker build + push to localhost:5000"
fi

# --- KEP-1755 registry discovery
if kubectl -n kube-public get cm local-registry-hosting -o jsonpath='{.data.localRegistryHosting\.v1}' 2>/dev/null \
   | grep -q 'host: "localhost:5000"'; then
  pass "kube-public/local-registry-hosting advertises localhost:5000"
else
  fail "kube-public/local-registry-hosting"
fi

# --- Deployment + Services
kubectl create namespace "$NS" >/dev/null
kubectl -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: $IMG
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
        resources: {limits: {memory: 32Mi, cpu: 100m}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
EOF
if kubectl -n "$NS" rollout status deploy/web --timeout=120s >/dev/null 2>&1; then
  pass "Deployment with the pushed image becomes Ready"
else
  fail "Deployment Ready" "$(kubectl -n "$NS" describe pods 2>&1 | tail -n 15)"
fi

# --- exec
OUT=$(kubectl -n "$NS" exec deploy/web -- cat /www/index.html 2>&1)
[ "$OUT" = "$BODY" ] && pass "kubectl exec" || fail "kubectl exec" "$OUT"

# --- logs
OUT=$(kubectl -n "$NS" logs deploy/web 2>&1)
echo "$OUT" | grep -q "smoke-log-$TOKEN" && pass "kubectl logs" || fail "kubectl logs" "$OUT"

# --- port-forward
kubectl -n "$NS" port-forward deploy/web :8080 >"$CTX/pf.log" 2>&1 &
PF_PID=$!
PORT=
for _ in $(seq 1 40); do
  PORT=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$CTX/pf.log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.25
done
OUT=$( [ -n "$PORT" ] && curl -sf -m 5 "http://127.0.0.1:$PORT/" 2>&1)
[ "$OUT" = "$BODY" ] && pass "kubectl port-forward + HTTP GET" || fail "kubectl port-forward" "port=$PORT out=$OUT $(cat "$CTX/pf.log")"
kill "$PF_PID" 2>/dev/null; wait "$PF_PID" 2>/dev/null; PF_PID=

# --- NodePort (kube-proxy; localhost NodePorts via route_localnet)
NODEPORT=$(kubectl -n "$NS" get svc web -o jsonpath='{.spec.ports[0].nodePort}')
OUT=
for _ in $(seq 1 60); do
  OUT=$(curl -sf -m 2 "http://127.0.0.1:$NODEPORT/" 2>/dev/null) && [ "$OUT" = "$BODY" ] && break
  sleep 0.5
done
[ "$OUT" = "$BODY" ] && pass "NodePort Service ($NODEPORT) answers on 127.0.0.1" || fail "NodePort Service" "port=$NODEPORT out=$OUT"

# --- ClusterIP from the host
CIP=$(kubectl -n "$NS" get svc web -o jsonpath='{.spec.clusterIP}')
OUT=$(curl -sf -m 3 "http://$CIP/" 2>/dev/null)
[ "$OUT" = "$BODY" ] && pass "ClusterIP Service ($CIP) answers from the host" || fail "ClusterIP Service" "$CIP: $OUT"

# --- pod -> Service -> another pod (CNI bridge + firewall plugin vs Docker's FORWARD DROP)
kubectl -n "$NS" run client --image=localhost:5000/stilt-test/busybox:latest --restart=Never \
  --command -- sleep 3600 >/dev/null 2>&1
if kubectl -n "$NS" wait --for=condition=Ready pod/client --timeout=60s >/dev/null 2>&1; then
  OUT=$(kubectl -n "$NS" exec client -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $CIP 80" 2>&1)
  echo "$OUT" | grep -q "$BODY" && pass "pod -> ClusterIP -> pod HTTP" || fail "pod -> ClusterIP -> pod HTTP" "$OUT"
else
  fail "client pod Ready" "$(kubectl -n "$NS" describe pod client 2>&1 | tail -n 10)"
fi

# --- the kubernetes Service VIP from inside a pod (in-cluster clients)
OUT=$(kubectl -n "$NS" exec deploy/web -- sh -c 'echo | nc -w 3 10.96.0.1 443 >/dev/null && echo vip-ok' 2>&1)
[ "$OUT" = vip-ok ] && pass "pod reaches the kubernetes Service VIP" || fail "pod reaches 10.96.0.1:443" "$OUT"

# --- service-account tokens (TokenRequest)
OUT=$(kubectl -n "$NS" create token default 2>&1)
[[ "$OUT" == ey* ]] && pass "kubectl create token" || fail "kubectl create token" "$OUT"

echo "# smoke test took $(( $(date +%s) - T0 ))s"
finish
