// What the app's routes use of the console feature (operators: lists and entities).
export { EntityPage } from './components/EntityPage';
export { ListPage } from './components/ListPage';
export { CreatePage } from './components/CreatePage';
