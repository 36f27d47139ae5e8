// The sandbox ("pause") program for the rig's node: containerd needs a sandbox image and
// registry.k8s.io is out of reach here, so hack/build-bins.sh builds this static binary and
// hack/node-images.sh packs it into an OCI image.
module airlock.local/hack/k8s/pause

go 1.26.0
