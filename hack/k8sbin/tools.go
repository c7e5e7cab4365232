//go:build tools

// Package tools pins the Kubernetes commands this wrapper module builds: the control plane
// (kube-apiserver, kube-controller-manager) and the node (kube-scheduler, kubelet).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
