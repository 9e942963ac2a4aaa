args = [
  "héllo wörld",
  "日本語",
  "\u0000",
  "😀"
]
command = "/opt/ünï/cödé"
unveil = [
  "r:/opt/ünï"
]
