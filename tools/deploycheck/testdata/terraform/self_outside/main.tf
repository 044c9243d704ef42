resource "aws_instance" "i" {
  tags = { Name = self.id }
}
