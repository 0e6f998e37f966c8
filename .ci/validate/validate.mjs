// CI checks that need npm packages. Usage:
//   node validate.mjs crds FILE...     custom resources against their own CRD schemas
//   node validate.mjs asyncapi FILE    an AsyncAPI document, with the JSON Schemas it references
import fs from "node:fs";
import yaml from "js-yaml";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Parser, fromFile } from "@asyncapi/parser";

const MODELS = {
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};

function crds(files) {
  let checked = 0;
  for (const file of files) {
    for (const doc of yaml.loadAll(fs.readFileSync(file, "utf8"))) {
      if (!doc) continue;
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      if (!Model) continue;
      new Model(doc).validate(); // throws with the schema path of the first violation
      console.log(`ok ${doc.kind} ${doc.metadata.name} (${file})`);
      checked += 1;
    }
  }
  if (checked === 0) throw new Error("no custom resource found to check");
}

async function asyncapi(file) {
  const { document, diagnostics } = await fromFile(new Parser(), file).parse();
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) console.log(`${["error", "warning", "info", "hint"][d.severity]} ${d.code}: ${d.message} at ${d.path.join("/")}`);
  if (errors.length || !document) throw new Error(`${file}: ${errors.length} error(s)`);
  console.log(`ok ${file}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.operations().length} operations, ${document.components().messages().length} messages`);
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === "crds") crds(args);
  else if (command === "asyncapi") await asyncapi(args[0]);
  else throw new Error(`unknown command ${command}`);
} catch (error) {
  console.error(String(error.message || error));
  process.exit(1);
}
