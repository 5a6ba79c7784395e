"""ChromaGAN (Vitoria et al., WACV 2020): Lab colorization with a VGG-16 trunk, a class head and a WGAN-GP critic."""
