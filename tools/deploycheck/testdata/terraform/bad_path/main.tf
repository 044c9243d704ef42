output "dir" {
  value = "${path.modul}/files"
}
