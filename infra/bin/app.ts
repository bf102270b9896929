import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../app.ts';

const app = new App();
buildApp(app);
// cdk-nag AwsSolutions on every synth: a new finding fails `cdk synth`, not just the tests.
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
app.synth();
