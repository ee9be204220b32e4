
cifar10_pruningN "
	conv1/š™™™™™é?,ÍÌÌÌÌÌì?pNx 