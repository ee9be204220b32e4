
cifarw0_p.unicg░N═█"
^conv1/ ≥≥≥≥≥И?iмлллллЛ?pw,x═█