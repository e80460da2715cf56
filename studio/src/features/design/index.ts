// What the app's routes use of the design feature.
export { DraftProvider } from './components/DraftProvider';
export { DesignPage } from './components/DesignPage';
export { DesignTypePage } from './components/DesignTypePage';
export { PublishPage } from './components/PublishPage';
export { WorkflowPage } from './components/WorkflowPage';
