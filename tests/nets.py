"""`.net` text shared by several test files."""

# A ResNet basic block with a projection shortcut (stride s).
BASIC_BLOCK = """
block basic(c, s=1) {
    residual {
        conv(c, k=3, s=s, p=1, bias=false, round=floor) -> batchnorm -> relu
        conv(c, k=3, p=1, bias=false) -> batchnorm
    } shortcut {
        conv(c, k=1, s=s, bias=false, round=floor) -> batchnorm
    }
    relu
}
"""
