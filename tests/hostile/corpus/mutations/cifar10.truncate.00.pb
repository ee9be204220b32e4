
cifar10_pruningN "
^conv1/š™™™™™é?iÍÌÌÌ