output "grafana_datasource_url" {
  description = "URL of a Grafana Prometheus data source for every region's metrics (enable SigV4 auth, region = home region; deploy/grafana's dashboard uses it)."
  value       = aws_prometheus_workspace.this.prometheus_endpoint
}

output "amp_workspace_id" {
  description = "The AMP workspace every region writes to."
  value       = aws_prometheus_workspace.this.id
}

output "amp_remote_write_url" {
  description = "AMP remote write endpoint (SigV4, aps:RemoteWrite)."
  value       = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/remote_write"
}

output "amp_query_url" {
  description = "AMP instant query endpoint (SigV4, aps:QueryMetrics), what the evaluator reaches through its SigV4 proxy."
  value       = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/query"
}

output "log_group_names" {
  description = "CloudWatch log groups by region label, and the evaluator's (in the home region)."
  value = {
    (module.probe_home.region_label)   = module.probe_home.log_group_name
    (module.probe_second.region_label) = module.probe_second.log_group_name
    (module.probe_third.region_label)  = module.probe_third.log_group_name
    evaluator                          = module.evaluator.log_group_name
  }
}

output "service_names" {
  description = "ECS cluster/service of every prober and of the evaluator."
  value = {
    (module.probe_home.region_label)   = "${module.probe_home.cluster_name}/${module.probe_home.service_name}"
    (module.probe_second.region_label) = "${module.probe_second.cluster_name}/${module.probe_second.service_name}"
    (module.probe_third.region_label)  = "${module.probe_third.cluster_name}/${module.probe_third.service_name}"
    evaluator                          = "${module.probe_home.cluster_name}/${module.evaluator.service_name}"
  }
}

output "config_bucket_names" {
  description = "The versioned config bucket of each region (config/probes.yaml, config/flows/...; the home one also holds evaluator/evaluate.yaml)."
  value = {
    (module.probe_home.region_label)   = module.probe_home.config_bucket_name
    (module.probe_second.region_label) = module.probe_second.config_bucket_name
    (module.probe_third.region_label)  = module.probe_third.config_bucket_name
  }
}

output "egress_ips" {
  description = "Source IPs of the probes by region: tell the system under test (WAF allowlists, keeping synthetic traffic out of business numbers)."
  value = {
    (module.probe_home.region_label)   = module.probe_home.egress_ips
    (module.probe_second.region_label) = module.probe_second.egress_ips
    (module.probe_third.region_label)  = module.probe_third.egress_ips
  }
}

output "secret_reader_role_arns" {
  description = "The execution roles this deployment lets read secrets: name them in the secrets' resource policies to deny everyone else."
  value = {
    (module.probe_home.region_label)   = module.probe_home.execution_role_arn
    (module.probe_second.region_label) = module.probe_second.execution_role_arn
    (module.probe_third.region_label)  = module.probe_third.execution_role_arn
    evaluator                          = module.evaluator.execution_role_arn
  }
}
