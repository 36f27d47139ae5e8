{{/*
Every pod controller and AI kind Airlock finds pod specs in, by API group: the rules of the
workloads webhook and what the controller's audit may list and watch. Mirrors
airlock.admission.webhookconfig.WORKLOAD_RULES (tests/unit/test_chart.py compares them).
*/}}
{{- define "airlock.workloadKinds" -}}
- group: ""
  resources: [replicationcontrollers, podtemplates]
- group: apps
  resources: [deployments, statefulsets, daemonsets, replicasets]
- group: batch
  resources: [jobs, cronjobs]
- group: kubeflow.org
  resources: [pytorchjobs, tfjobs, mpijobs, xgboostjobs, paddlejobs, jaxjobs, mxjobs, notebooks]
- group: trainer.kubeflow.org
  resources: [trainjobs, trainingruntimes, clustertrainingruntimes]
- group: jobset.x-k8s.io
  resources: [jobsets]
- group: serving.kserve.io
  resources: [inferenceservices, servingruntimes, clusterservingruntimes, trainedmodels, llminferenceservices, llminferenceserviceconfigs]
- group: ray.io
  resources: [rayclusters, rayjobs, rayservices, raycronjobs]
- group: argoproj.io
  resources: [workflows, workflowtemplates, cronworkflows, clusterworkflowtemplates]
- group: batch.volcano.sh
  resources: [jobs]
{{- end -}}
