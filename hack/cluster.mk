# Local Kubernetes for the demo and the e2e tests: etcd, kube-apiserver and
# kube-controller-manager built from Go modules and run on 127.0.0.1 (see hack/README.md).
# Included by the top Makefile, which defines BIN (.venv/bin) and STAMP (.venv/.installed).
CLUSTER_DIR ?= .local/cluster

.PHONY: cluster-bins cluster-up cluster-down cluster-status node-up node-down image kind-up kind-down

cluster-bins: ## build etcd, kube-apiserver, kube-controller-manager, kubectl, helm once (cached in ~/.cache/airlock)
	@bash hack/build-bins.sh >/dev/null

cluster-up: $(STAMP) cluster-bins ## start the local control plane; writes .local/cluster/kubeconfig and env
	@$(BIN)/python hack/localcluster.py up --run-dir $(CLUSTER_DIR)

cluster-down: $(STAMP) ## stop the local control plane's processes and remove its run state
	@$(BIN)/python hack/localcluster.py down --run-dir $(CLUSTER_DIR)

node-up: $(STAMP) cluster-bins ## (root) the control plane plus a real node: containerd, kubelet, scheduler, kube-proxy
	@$(BIN)/python hack/localcluster.py up --node --run-dir $(CLUSTER_DIR)

node-down: cluster-down ## stop the node and the control plane; undo every host change (same as cluster-down)

image: ## (root) Airlock's image and the node's pause image as OCI archives in .local/image, no Docker
	@bash hack/build-image.sh $(or $(IMAGES),all)

cluster-status: $(STAMP) ## tell whether the local control plane is up
	@$(BIN)/python hack/localcluster.py status --run-dir $(CLUSTER_DIR)

kind-up: ## (needs Docker + kind) create kind cluster "airlock"; writes .local/cluster/kubeconfig
	@bash hack/kind-up.sh

kind-down: ## (needs Docker + kind) delete kind cluster "airlock"
	@bash hack/kind-up.sh --down
