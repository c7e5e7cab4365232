module mailagent.dev/hack/pause

go 1.26.0
