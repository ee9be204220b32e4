
cifar10_pruningN "
^c